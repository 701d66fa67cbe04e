"""The pricing benchmarks: ``shopml benchmark pricing`` (elasticities per brand on an OJ-layout
panel plus the Montgomery comparison, :func:`shopml.pricing.panel.run_panel_benchmark`) and
``shopml benchmark pricing-sim`` (the backtest on the confounded simulator, where the true
elasticities are known, :func:`shopml.pricing.backtest.run_backtest`).

Example:
    >>> res = run_pricing_sim(items=5, stores=4, weeks=20)   # doctest: +SKIP
    >>> {r["model"] for r in res.rows} >= {"naive", "dml"}    # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from shopml.benchmarks._common import BenchmarkResult, peak_rss_mb

__all__ = ["run_pricing", "run_pricing_sim"]

log = logging.getLogger(__name__)


def run_pricing(data: Path, demo: Path | None = None, *, folds: int = 5, epochs: int = 20, members: int = 3,
                cost_fraction: float = 0.7, threads: int = 2, seed: int = 0) -> BenchmarkResult:
    """Elasticities (naive, naive_by_brand, dml, neural) per brand of the panel ``data``
    (store demographics ``demo`` joined on store); the extras hold the Montgomery comparison
    under ``montgomery``. ``folds`` = 0 skips the neural K-fold stability check."""
    from shopml.pricing.panel import read_panel, run_panel_benchmark

    t0 = time.perf_counter()
    df = read_panel(data, demo)
    log.info("pricing: %d rows, %d brands", df.height, df["brand"].n_unique())
    rows, extra = run_panel_benchmark(df, folds=folds, epochs=epochs, members=members, threads=threads, seed=seed,
                                      cost_fraction=cost_fraction)
    extra.update(n_rows=df.height, n_brands=df["brand"].n_unique(), total_seconds=time.perf_counter() - t0,
                 peak_rss_mb=peak_rss_mb(), data=str(data), demo=str(demo) if demo else None)
    return BenchmarkResult(Path(data).name, rows, extra)


def run_pricing_sim(items: int = 50, stores: int = 20, weeks: int = 52, seed: int = 0,
                    threads: int = 2) -> BenchmarkResult:
    """Backtest on the confounded simulator: elasticity_error, regret, violations per method."""
    from shopml.pricing.backtest import run_backtest

    t0 = time.perf_counter()
    log.info("pricing-sim: %d items x %d stores x %d weeks", items, stores, weeks)
    res = run_backtest(items, stores, weeks, seed, threads=threads)
    extra = {k: v for k, v in res.items() if k != "rows"} | {"total_seconds": time.perf_counter() - t0,
                                                             "peak_rss_mb": peak_rss_mb()}
    return BenchmarkResult("simulated confounded market", res["rows"], extra)
