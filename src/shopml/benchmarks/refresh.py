"""The refresh benchmark (``shopml benchmark refresh``): is a nightly warm start as good as a
full refit, for a fraction of the time?

On one log and one test window (``test_from``, by default the fit's own rule on the whole log):

1. *previous*: ``shopml fit`` on the log before ``split_at`` (what the shop had last month);
2. *full*: ``shopml fit`` on the whole log before the test window (choose and train again);
3. *warm*: ``shopml fit --warm-start previous`` on the same log (continue the previous models).

Both are scored on the same test window by the fit's own code. Rows: ``mode``, ``job``,
``model``, ``protocol``, ``ndcg@10``/``hr@10`` (recommend) or ``mae`` (customers),
``train_seconds`` (the model's own training in that mode: the full fit's second round, or the
refresh) and ``job_seconds`` (the whole job, the full fit's validation round included).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import polars as pl

from shopml.benchmarks._common import BenchmarkResult
from shopml.errors import ConfigError

__all__ = ["run_refresh"]

_KEEP = ("model", "protocol", "ndcg@10", "hr@10", "revenue@10", "mae", "train_seconds", "winner")


def run_refresh(events: str, split_at, *, load: dict | None = None, test_from=None, jobs: Sequence[str] = (
        "recommend", "customers"), preset: str = "auto", max_minutes: float | None = None,
        log: Callable[[str], None] = lambda m: None) -> BenchmarkResult:
    """Fit before ``split_at``, then refit and warm-start on the log up to the test window;
    one row per mode x job x model (x protocol)."""
    from shopml.data.events import load_events
    from shopml.pipeline import FitConfig, fit_all, periods_of

    df, _ = load_events(events, **(load or {}))
    cfg = FitConfig.preset(preset)
    cfg = cfg.for_data(df) if preset == "auto" else cfg
    cut = periods_of(df, test_from).test_from
    if not df["timestamp"].min() < split_at < cut:
        raise ConfigError(f"--split-at {split_at.date()} must fall between the log's start "
                          f"({df['timestamp'].min().date()}) and its test window ({cut.date()})")
    rows, summary = [], {"split_at": split_at.isoformat(), "test_from": cut.isoformat()}
    with tempfile.TemporaryDirectory(prefix="shopml-bench-refresh-") as tmp:
        log(f"[refresh] previous: fit on the log before {split_at.date()}")
        t0 = time.perf_counter()
        fit_all(df.filter(pl.col("timestamp") < split_at), Path(tmp) / "previous", config=cfg, jobs=tuple(jobs),
                max_minutes=max_minutes, log=log)
        summary["previous_seconds"] = round(time.perf_counter() - t0, 1)
        for mode, warm in (("full", None), ("warm", Path(tmp) / "previous")):
            log(f"[refresh] {mode}: the log before {cut.date()}, scored on the test window")
            t0 = time.perf_counter()
            res = fit_all(df, Path(tmp) / mode, config=cfg, jobs=tuple(jobs), test_from=cut,
                          max_minutes=max_minutes, log=log, warm_start=warm)
            summary[f"{mode}_seconds"] = round(time.perf_counter() - t0, 1)
            for job, metrics in res.metrics.items():
                rows += [{"mode": mode, "job": job, **{k: r[k] for k in _KEEP if k in r},
                          "job_seconds": res.seconds.get(job)} for r in metrics]
    summary.update(_ratios(rows))
    return BenchmarkResult(str(events), rows, summary)


def _ratios(rows: list[dict]) -> dict:
    """Warm against full for each recommend model (protocol A) and customer model: the share
    of the refit's train seconds and of its NDCG@10 (or the MAE ratio).

    Example:
        >>> r = [{"mode": "full", "job": "recommend", "model": "sasrec", "protocol": "A", "ndcg@10": .2,
        ...       "train_seconds": 100.0},
        ...      {"mode": "warm", "job": "recommend", "model": "sasrec", "protocol": "A", "ndcg@10": .199,
        ...       "train_seconds": 15.0}]
        >>> _ratios(r)
        {'sasrec': {'train_seconds_share': 0.15, 'ndcg@10_share': 0.995}}
    """
    out = {}
    pick = {(r["mode"], r["job"], r["model"]): r for r in rows if r.get("protocol", "A") == "A"}
    for (mode, job, model), warm in pick.items():
        full = pick.get(("full", job, model))
        if mode != "warm" or full is None:
            continue
        metric = "ndcg@10" if job == "recommend" else "mae"
        entry = {}
        if full.get("train_seconds"):
            entry["train_seconds_share"] = round(warm.get("train_seconds", 0.0) / full["train_seconds"], 3)
        if full.get(metric):
            entry[f"{metric}_share"] = round(warm[metric] / full[metric], 3)
        out[model if job == "recommend" else f"customers-{model}"] = entry
    return out
