"""Shared pieces of the CLI: the Typer apps, consoles, JSON output and benchmark files."""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from shopml.artifacts import json_default as _json_default

app = typer.Typer(
    name="shopml",
    help="shopml: recommendations, behaviour prediction and price optimization for shops.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
benchmark_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

console = Console()
console_err = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


def print_json(obj: Any) -> None:
    """Print one JSON document on stdout (numbers as plain floats, no Rich markup)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
    (``out`` with suffix ``.md``), and print the table."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"dataset": dataset, "rows": rows, **(extra or {})}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=_json_default))
    os.replace(tmp, out)
    table = markdown_table(rows)
    md = out.with_suffix(".md")
    md_tmp = md.with_name(md.name + ".tmp")
    md_tmp.write_text(f"# {dataset}\n\n{table}\n")
    os.replace(md_tmp, md)
    console.print(table, markup=False, soft_wrap=True)
