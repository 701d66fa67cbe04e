"""The whole-pipeline benchmark (``shopml benchmark fit``): ``shopml fit`` on any event log,
scored on its test window, one row per job x model (x protocol).

Example:
    >>> res = run_fit("events.parquet", preset="tiny", jobs=("recommend",))   # doctest: +SKIP
    >>> {r["job"] for r in res.rows}                                           # doctest: +SKIP
    {'recommend'}
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from shopml.benchmarks._common import BenchmarkResult

__all__ = ["benchmark_rows", "run_fit"]

_logger = logging.getLogger(__name__)


def run_fit(events: str, *, load: dict | None = None, test_from=None, max_minutes: float | None = None,
            jobs: Sequence[str] | None = None, preset: str = "auto", run: Path | None = None,
            log: Callable[[str], None] | None = None) -> BenchmarkResult:
    """Read ``events`` (``load``: :func:`shopml.data.events.load_events` keyword arguments),
    fit every job into ``run`` (default: a temporary folder) and score it on the test window.
    ``log`` gets the pipeline's progress lines (default: this module's logger, INFO)."""
    from shopml.data.events import load_events
    from shopml.data.quality import quality_report
    from shopml.pipeline import JOBS, FitConfig, fit_all

    say = log or _log
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shopml-bench-fit-") as tmp:
        df, warnings = load_events(events, **(load or {}))
        quality = quality_report(df, warnings)
        say(f"read {df.height:,} events: {quality['users']:,} users, {quality['items']:,} items")
        cfg = FitConfig.preset(preset)
        if preset == "auto":
            cfg = cfg.for_data(df)
        res = fit_all(df, run or Path(tmp) / "run", config=cfg, jobs=tuple(jobs or JOBS), quality=quality,
                      test_from=test_from, max_minutes=max_minutes, log=say)
    extra = {"seconds": round(time.perf_counter() - t0, 1), "excluded": quality.get("excluded", {}),
             "skipped": res.skipped, "periods": res.periods, "winners": res.winners}
    return BenchmarkResult(str(events), benchmark_rows(res), extra)


def _log(message: str) -> None:
    _logger.info("%s", message)


def benchmark_rows(res) -> list[dict]:
    """One row per job x model (x protocol) with lower-case metric names and ``winner``."""
    rows = []
    for job, metrics in res.metrics.items():
        for r in metrics:
            row = {"job": job, "model": r["model"], "winner": bool(r.get("winner", False))}
            row.update({k.lower(): v for k, v in r.items() if k not in ("model", "winner")})
            rows.append(row)
    return rows
