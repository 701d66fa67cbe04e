"""The customer-forecast benchmark (``shopml benchmark customers``): the customer RNN
against BG/NBD on CDNOW, per-customer holdout MAE and the cumulative weekly purchase curve.

:func:`load_transactions` is also how ``shopml customers fit`` reads its input, so the
benchmark and a fitted model see the same customers. Customer ids are pseudonymized (keyed
HMAC) before anything is fitted.

Example:
    >>> res = run_customers("CDNOW_master.txt")           # doctest: +SKIP
    >>> [r["model"] for r in res.rows]                     # doctest: +SKIP
    ['rnn', 'bgnbd']
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from shopml.benchmarks._common import BenchmarkResult, peak_rss_mb
from shopml.errors import ConfigError

__all__ = ["NOTE", "load_transactions", "run_customers"]

log = logging.getLogger(__name__)

NOTE = ("mae: rnn = predictive median, bgnbd = conditional expectation (FHL 2005's forecast); "
        "mae_median / rmse_mean compare like with like; oracle_cell_median_mae reads the "
        "holdout (median per (x, t_x in 5-week bins) cell): a yardstick, not a model")


def load_transactions(data: Path, fmt: str, pseudonymize: bool = True):
    """(ids, day, dollars, start date) from a CDNOW-format or canonical events file."""
    from shopml.customers.estimator import transactions_to_days
    from shopml.privacy import pseudonymize as pseudo

    if fmt == "cdnow":
        from shopml.data.public import read_cdnow

        tx = read_cdnow(data)
        ids, day, usd, start = transactions_to_days(tx)
        return (np.array(pseudo(ids)) if pseudonymize else ids), day, usd, start
    if fmt == "events":
        from shopml.data.events import read_events

        return transactions_to_days(read_events(data))  # read_events pseudonymizes user ids
    raise ConfigError(f"unknown --format {fmt!r}; use cdnow or events")


def run_customers(data: Path, *, calibration_weeks: int = 39, holdout_weeks: int = 39, n_members: int = 3,
                  seed: int = 0) -> BenchmarkResult:
    """Fit BG/NBD and the RNN ensemble on weeks 1..``calibration_weeks`` of a CDNOW file and
    score both on the ``holdout_weeks`` after: one row per model plus the curve and ratios."""
    from shopml.customers.bgnbd import BGNBD, rfm_summary
    from shopml.customers.estimator import CustomerForecaster, evaluate_holdout

    data = Path(data)
    ids, day, usd, start = load_transactions(data, "cdnow")
    cal, hold = 7 * calibration_weeks - 1, 7 * (calibration_weeks + holdout_weeks) - 1
    log.info("customers: fitting bgnbd")
    t0 = time.perf_counter()
    r = rfm_summary(ids, day, cal)
    bg = BGNBD().fit(r["x"], r["tx"], r["T"])
    bg_seconds = time.perf_counter() - t0
    log.info("customers: fitting rnn (%d members)", n_members)
    m = CustomerForecaster(n_members=n_members, seed=seed).fit_arrays(ids, day, usd, cal, start=start)
    ev = evaluate_holdout(m, ids, day, hold)
    rows = [
        # The point forecast scored as `mae`: the RNN's predictive median, BG/NBD's conditional
        # expectation (FHL 2005's forecast). Both models' mean and median are in the row as well.
        {"model": "rnn", "mae": ev["rnn"]["mae_median"], **ev["rnn"], "train_seconds": m.train_seconds_,
         "peak_rss_mb": peak_rss_mb()},
        {"model": "bgnbd", "mae": ev["bgnbd"]["mae_mean"], **ev["bgnbd"], **bg.params_, "ll": bg.log_likelihood_,
         "train_seconds": bg_seconds},
    ]
    extra = {"actual_total": ev["actual_total"], "calibration_weeks": calibration_weeks,
             "holdout_weeks": holdout_weeks, "customers": len(m.customers_), "curve": ev["curve"],
             "mae_ratio_rnn_to_bgnbd": rows[0]["mae"] / rows[1]["mae"],
             "mae_median_ratio_rnn_to_bgnbd": ev["rnn"]["mae_median"] / ev["bgnbd"]["mae_median"],
             "rmse_mean_ratio_rnn_to_bgnbd": ev["rnn"]["rmse_mean"] / ev["bgnbd"]["rmse_mean"],
             "oracle_cell_median_mae": ev["oracle_cell_median_mae"],
             "note": NOTE}
    dataset = (f"cdnow ({data.name}), weeks 1-{calibration_weeks} calibration, "
               f"{calibration_weeks + 1}-{calibration_weeks + holdout_weeks} holdout")
    return BenchmarkResult(dataset, rows, extra)
