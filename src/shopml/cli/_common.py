"""Shared pieces of the CLI: the Typer apps, consoles, JSON output and benchmark files."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from shopml.artifacts import json_default as _json_default
from shopml.benchmarks._common import peak_rss_mb  # noqa: F401  (commands import it from here)
from shopml.errors import DataError

app = typer.Typer(
    name="shopml",
    help="shopml: recommendations, behaviour prediction and price optimization for shops.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
benchmark_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        from shopml import __version__

        sys.stdout.write(f"shopml {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """shopml: recommendations, behaviour prediction and price optimization for shops."""

console = Console()
console_err = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None, so the JSON is valid JSON
    (``json.dumps`` would write the non-standard tokens NaN and Infinity).

    Example:
        >>> finite({"a": [1.0, float("nan")], "b": float("inf")})
        {'a': [1.0, None], 'b': None}
    """
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy scalars
        return finite(obj.item())
    return obj


def print_json(obj: Any) -> None:
    """Print one JSON document on stdout (numbers as plain floats, no Rich markup)."""
    sys.stdout.write(json.dumps(finite(obj), indent=2, default=_json_default, allow_nan=False) + "\n")
    sys.stdout.flush()


def markdown_table(rows: list[dict]) -> str:
    """Render rows (dicts) as a Markdown table; columns in first-seen order."""
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 1000 else f"{v:.0f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def write_benchmark(out: Path, dataset: str, rows: list[dict], extra: dict | None = None) -> None:
    """Write ``{"dataset", "rows", ...}`` to ``out`` atomically, a Markdown twin beside it
    (``out`` with suffix ``.md``), and print the table. Under ``torchrun`` only rank 0 writes
    (every rank computes the same rows)."""
    from shopml.artifacts import atomic_write_text
    from shopml.targets import BENCHMARK_MARK
    from shopml.training import dist_info

    if dist_info()[0] != 0:
        return
    out = Path(out)
    doc = finite({"dataset": dataset, "rows": rows, **(extra or {})})
    atomic_write_text(out, json.dumps(doc, indent=2, default=_json_default, allow_nan=False))
    table = markdown_table(rows)
    atomic_write_text(out.with_suffix(".md"), f"# {dataset}\n\n{table}\n\n{BENCHMARK_MARK}\n")
    console.print(table, markup=False, soft_wrap=True)


def check_input(path: Path | None) -> None:
    """A benchmark's input must exist before any model is built (one line, exit 2)."""
    if path is not None and not Path(path).exists():
        raise DataError("file not found", path=path)


def check_out(out: Path, inputs=()) -> None:
    """A benchmark's ``--out`` and its Markdown twin, checked before hours of training: new
    files, or files an earlier benchmark wrote, and none of ``inputs``
    (:func:`shopml.targets.check_benchmark_target`)."""
    from shopml.targets import check_benchmark_target

    check_benchmark_target(out, inputs=inputs)


class _ConsoleHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def show_progress(name: str = "shopml.benchmarks"):
    """Print the library's progress log (``name``, INFO and up) on the console inside the block:
    the benchmarks log each model as it finishes and print nothing themselves."""
    logger, handler = logging.getLogger(name), _ConsoleHandler()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def set_threads(n: int) -> None:
    """The CLI process's torch thread count (the library never sets it for the process)."""
    import torch

    torch.set_num_threads(max(1, n))
