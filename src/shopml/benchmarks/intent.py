"""The tabular purchase-intent benchmark (``shopml benchmark intent``): an MLP ensemble,
LightGBM and logistic regression on the same stratified folds of the UCI online-shoppers
data, AUC per fold.

Example:
    >>> res = run_intent("online_shoppers_intention.csv", folds=5)   # doctest: +SKIP
    >>> [r["model"] for r in res.rows][0]                             # doctest: +SKIP
    'neural'
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from shopml.benchmarks._common import BenchmarkResult, peak_rss_mb

__all__ = ["run_intent"]

log = logging.getLogger(__name__)


def run_intent(data: Path, *, folds: int = 5, n_members: int = 5, seed: int = 0) -> BenchmarkResult:
    """Cross-validated AUC of each model (``n_members`` MLP members per fold); the extras hold
    the neural model's margin over the best baseline."""
    from shopml.data.public import read_online_shoppers
    from shopml.intent.tabular import cross_validate_intent

    data = Path(data)
    X, y = read_online_shoppers(data)
    log.info("intent: %d sessions, %d folds", len(y), folds)
    res = cross_validate_intent(X, y, n_splits=folds, seed=seed, neural={"n_members": n_members})
    rows = [{"model": k, "auc": float(np.mean(v["auc"])), "auc_std": float(np.std(v["auc"])),
             "auc_folds": [round(a, 4) for a in v["auc"]], "train_seconds": v["train_seconds"]}
            for k, v in res.items()]
    best = max(r["auc"] for r in rows if r["model"] != "neural")
    return BenchmarkResult(f"uci online shoppers ({data.name}), stratified {folds}-fold, seed {seed}", rows,
                           {"neural_minus_best_baseline": rows[0]["auc"] - best, "peak_rss_mb": peak_rss_mb()})
