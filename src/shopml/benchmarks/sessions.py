"""The next-click benchmark (``shopml benchmark sessions``): Recall@20 and MRR@20 of each
session model on a Yoochoose-format split (SR-GNN text files), plus the simulator's
purchase-intent row.

Every training item is ranked; ties count pessimistically; test targets never seen in
training are misses.

Example:
    >>> res = run_sessions("train.txt", "test.tsv", ["markov", "pop"], intent=False)   # doctest: +SKIP
    >>> [r["model"] for r in res.rows]                                                  # doctest: +SKIP
    ['markov', 'pop']
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from shopml.benchmarks._common import BenchmarkResult, peak_rss_mb
from shopml.errors import ConfigError

__all__ = ["MODELS", "PROTOCOL", "check_models", "gru_params", "run_sessions"]

log = logging.getLogger(__name__)

MODELS = ("gru4rec", "vsknn", "markov", "pop")
PROTOCOL = "every training item ranked; ties pessimistic; targets unseen in training are misses"


def check_models(names: Sequence[str]) -> None:
    """Refuse an unknown model name before the split is read (the message of
    :func:`shopml.sessions.estimator.session_model`).

    Example:
        >>> check_models(["vsknn", "pop"])
    """
    for name in names:
        if name not in MODELS:
            raise ConfigError(f"unknown session model {name!r}; choose from {', '.join(MODELS)}")


def gru_params(epochs: int | None, max_seconds: float | None, hidden: int | None) -> dict:
    """GRU4Rec's Yoochoose defaults with the CLI's overrides (None keeps a default).

    Example:
        >>> gru_params(3, None, None)["epochs"]
        3
    """
    from shopml.sessions.estimator import DEFAULTS_YOOCHOOSE

    p = dict(DEFAULTS_YOOCHOOSE, max_seconds=max_seconds)
    if epochs:
        p["epochs"] = epochs
    if hidden:
        p["dim"] = hidden
    return p


def run_sessions(train: Path, test: Path, models: Sequence[str] = MODELS, *, threads: int = 2,
                 epochs: int | None = None, max_seconds: float | None = None, intent: bool = True) -> BenchmarkResult:
    """Fit each model on ``train`` (one session per line), score it on ``test``
    (``prefix<TAB>target``); with ``intent``, add the simulator purchase-intent row.
    ``threads`` is recorded in the extras (the caller sets torch's threads)."""
    from shopml.sessions.baselines import VSKNN_YOOCHOOSE
    from shopml.sessions.estimator import session_model

    check_models(models)
    train, test = Path(train), Path(test)
    tr, prefixes, targets = _read_split(train, test)
    rows = []
    for name in models:
        params = {"gru4rec": gru_params(epochs, max_seconds, None), "vsknn": VSKNN_YOOCHOOSE}.get(name, {})
        rows.append(_bench_row(name, session_model(name, **params), tr, prefixes, targets))
    if intent:
        rows.append(_intent_row())

    extra = {"train": str(train), "test": str(test), "threads": threads, "n_test": len(targets),
             "gru4rec_params": gru_params(epochs, max_seconds, None) if "gru4rec" in models else None,
             "vsknn_params": VSKNN_YOOCHOOSE if "vsknn" in models else None,
             "protocol": PROTOCOL}
    return BenchmarkResult(f"sessions: {train.parent.name}", rows, extra)


def _bench_row(name: str, model, train, prefixes, targets) -> dict:
    t0 = time.perf_counter()
    model.fit(train)
    train_s = time.perf_counter() - t0
    res = model.evaluate(prefixes, targets, k=20)
    row = {"model": name, "hr@20": round(res["hr@20"], 4), "mrr@20": round(res["mrr@20"], 4),
           "train_seconds": round(train_s, 1), "eval_seconds": res["eval_seconds"],
           "peak_rss_mb": round(peak_rss_mb(), 0)}  # fmt: skip
    if hasattr(model, "history_"):
        row["epochs"] = len(model.history_)
    log.info("%s", row)
    return row


def _read_split(train: Path, test: Path):
    """The split through data-core's reader, as raw-id lists (the estimators' input).
    Unknown test targets become "" (never a training item: a miss)."""
    import numpy as np

    from shopml.data.public import read_session_split

    split = read_session_split(train, test)
    ids = np.array([""] + split.item_map.to_list(), dtype=object)

    def lists(seqs):
        return [a.tolist() for a in np.split(ids[seqs.items], seqs.indptr[1:-1])]

    return lists(split.train_sessions), lists(split.test_prefixes), ids[split.test_targets].tolist()


def _intent_row() -> dict:
    """Purchase-intent AUC on the simulator beside the AUC of its true propensity."""
    from shopml.intent.estimator import simulator_intent_benchmark

    t0 = time.perf_counter()
    res = simulator_intent_benchmark()
    row = {"model": "intent-gru (simulator)", "auc": round(res["auc"], 4), "oracle_auc": round(res["oracle_auc"], 4),
           "train_seconds": round(res["train_seconds"], 1), "eval_seconds": round(time.perf_counter() - t0 - res["train_seconds"], 1),
           "peak_rss_mb": round(peak_rss_mb(), 0)}  # fmt: skip
    log.info("%s", row)
    return row
