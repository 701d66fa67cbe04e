"""The next-item benchmark (``shopml benchmark recommend``) and its memory check
(``shopml benchmark recommend-memory``).

The protocol is leave-one-out with full ranking over every item: neural models train on all
but each user's last two items and early-stop on the second-last; baselines (nothing to
early-stop) count all but the last. ``shopml recommend fit|evaluate`` use the same split and
fit (:func:`read_sequences`, :func:`split`, :func:`fit_model`), so a saved model scores as
its benchmark row. Hyper-parameters are the estimators' defaults for every dataset.

Example:
    >>> res = run_recommend("tiny.txt", ["pop", "markov"])   # doctest: +SKIP
    >>> [(r["model"], r["protocol"]) for r in res.rows]       # doctest: +SKIP
    [('pop', 'A'), ('pop', 'B'), ('markov', 'A'), ('markov', 'B')]
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from collections.abc import Callable, Sequence

import numpy as np

from shopml.benchmarks._common import BenchmarkResult, peak_rss_mb
from shopml.errors import ConfigError, DataError

__all__ = ["MODELS", "ABLATIONS", "NEURAL", "PROTOCOL_NOTE", "check_models", "make_model", "read_sequences", "split",
           "fit_model", "row_name", "run_recommend", "kept_rows", "memory_check", "run_memory"]

log = logging.getLogger(__name__)

MODELS = ("sasrec", "caser", "pop", "itemknn", "markov")
#: run on request only: SASRec with the in-network repeat head (the default before the
#: window repeat gate replaced it), to measure what the head does; SASRec with the softmax's
#: products in float32 wherever it runs (the default takes bfloat16 where it is native)
ABLATIONS = ("sasrec-repeathead", "sasrec-fp32")
NEURAL = ("sasrec", "caser", *ABLATIONS)

PROTOCOL_NOTE = ("leave-one-out, full ranking over every item; A excludes history items, B excludes nothing; "
                 "neural models train on all but the last 2 items and early-stop on the second-last; baselines "
                 "count all but the last item")


def check_models(names: Sequence[str]) -> None:
    """Refuse an unknown model name before anything is read or trained.

    Example:
        >>> check_models(["pop", "sasrec"])
    """
    for name in names:
        if name not in MODELS + ABLATIONS:
            raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS + ABLATIONS)}")


def make_model(name: str, *, progress: bool = True, threads: int = 2, epochs: int | None = None,
               max_seconds: float | None = None, device: str = "cpu"):
    """A recommender with its default hyper-parameters by name.

    Example:
        >>> type(make_model("pop")).__name__
        'MostPopular'
    """
    from shopml.recommend import baselines, models

    kw = {"progress": progress, "threads": threads, "max_seconds": max_seconds, "device": device,
          **({"epochs": epochs} if epochs else {})}
    table = {
        "sasrec": lambda: models.SASRecRecommender(**kw),
        "sasrec-repeathead": lambda: models.SASRecRecommender(repeat_head=True, **kw),
        "sasrec-fp32": lambda: models.SASRecRecommender(precision="fp32", **kw),
        "caser": lambda: models.CaserRecommender(**kw),
        "pop": baselines.MostPopular,
        "itemknn": baselines.ItemKNN,
        "markov": baselines.Markov,
    }
    if name not in table:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS + ABLATIONS)}")
    return table[name]()


def read_sequences(path: Path):
    """Sequences from a Beauty-format ``.txt`` file or an event file (CSV/Parquet/JSONL)."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=path)
    if path.suffix.lower() == ".txt":
        from shopml.data.public import read_beauty

        return read_beauty(path)
    from shopml.data.events import read_events
    from shopml.data.sequences import build_sequences

    return build_sequences(read_events(path))


def split(seqs):
    """(train, valid, test, train + valid) of the leave-one-out split."""
    from shopml.data.sequences import leave_one_out

    train, valid, test = leave_one_out(seqs)
    return train, valid, test, train.append(valid)


def fit_model(name: str, seqs, *, progress: bool, threads: int, epochs: int | None = None,
              max_seconds: float | None = None, item_features=None, device: str = "cpu"):
    """Fit on the leave-one-out training part: neural models early-stop on the validation item,
    then fit their probability temperature on it; baselines (nothing to early-stop) see train +
    validation item. ``item_features`` (:class:`~shopml.data.features.ItemFeatures`) feed the
    neural models. Returns (model, splits)."""
    train, valid, test, train_valid = split(seqs)
    model = make_model(name, progress=progress, threads=threads, epochs=epochs, max_seconds=max_seconds, device=device)
    if name in NEURAL:
        model.fit(train, valid, item_features=item_features)
        _gate_on_valid(model, train, valid)
        model.calibrate(train, valid)
    else:
        model.fit(train_valid)
    return model, (train, valid, test, train_valid)


def _gate_on_valid(model, train, valid) -> None:
    """The window repeat gate (:mod:`shopml.recommend.repeat_gate`) fitted on the validation
    item, as the fit command fits it on its validation window; the calibration that follows
    sees it. Protocol A cannot move; B learns how much a history item is worth here."""
    from shopml.recommend.window_value import window_gate

    valid = np.asarray(valid)
    has = valid > 0
    t_indptr = np.concatenate([[0], np.cumsum(has)]).astype(np.int64)
    model.repeat_gate_ = window_gate(model, train, t_indptr, valid[has].astype(np.int64), max_rows=2000)


def row_name(name: str, item_features) -> str:
    """The row label: ``sasrec-features`` when a neural model was given item features."""
    return f"{name}-features" if item_features is not None and name in NEURAL else name


def run_recommend(data: Path, models: Sequence[str] = MODELS, *, threads: int = 2, epochs: int | None = None,
                  max_seconds: float | None = None, rows: list[dict] | None = None,
                  on_model: Callable[[BenchmarkResult], None] | None = None,
                  item_features: Path | None = None, device: str = "cpu") -> BenchmarkResult:
    """Train and evaluate each model on a leave-one-out split of ``data``: two rows per model
    (protocols A and B), after ``rows`` (rows kept from an earlier run, see :func:`kept_rows`).
    With ``item_features`` (a side file, :func:`~shopml.data.features.read_item_features`) the
    neural rows are ``sasrec-features`` / ``caser-features``. ``on_model(result so far)`` runs
    after each model, so a caller can save finished models before a long one starts."""
    from shopml.data.features import read_item_features

    check_models(models)
    data = Path(data)
    feats = read_item_features(item_features) if item_features is not None else None
    seqs = read_sequences(data)
    from shopml.training import dist_info

    extra = {"threads": threads, "processes": dist_info()[1], "device": device, "protocol_note": PROTOCOL_NOTE}
    if feats is not None:
        extra.update(item_features=Path(item_features).name, feature_tokens=feats.n_tokens,
                     feature_coverage=round(feats.coverage(seqs.item_map.to_list()), 4))
    res = BenchmarkResult(data.name, list(rows or []), extra)
    for name in models:
        log.info("recommend: fitting %s", row_name(name, feats))
        res.rows.extend(_model_rows(name, seqs, threads=threads, epochs=epochs, max_seconds=max_seconds,
                                    item_features=feats, device=device))
        if on_model is not None:
            on_model(res)
    return res


def _model_rows(name: str, seqs, *, threads: int, epochs: int | None, max_seconds: float | None,
                item_features=None, device: str = "cpu") -> list[dict]:
    from shopml.evaluation.protocols import evaluate_model
    from shopml.recommend.value import slate_calibration

    t0 = time.perf_counter()
    m, (_, _, test, train_valid) = fit_model(name, seqs, progress=True, threads=threads, epochs=epochs,
                                             max_seconds=max_seconds, item_features=item_features, device=device)
    train_s = time.perf_counter() - t0
    calib = slate_calibration(m, train_valid, test) if name in NEURAL else {}
    calib.pop("reliability", None)  # a table of its own, not a column
    t1 = time.perf_counter()
    res = evaluate_model(m, train_valid, test)
    eval_s = time.perf_counter() - t1
    ungated = {}
    if getattr(m, "repeat_gate_", None) is not None:  # what the gate adds under protocol B
        gate, m.repeat_gate_ = m.repeat_gate_, None
        ungated = {"ndcg@10_ungated": evaluate_model(m, train_valid, test)["B"]["ndcg@10"], "repeat_gate": gate}
        m.repeat_gate_ = gate
    info = getattr(m, "fit_info_", {}) or {}
    n_ep = info.get("epochs", 0)
    rows = []
    for proto in ("A", "B"):
        r = res[proto]
        rows.append({"model": row_name(name, item_features), "protocol": proto, "hr@10": r["hr@10"], "ndcg@10": r["ndcg@10"],
                     "hr@20": r["hr@20"], "ndcg@20": r["ndcg@20"], "mrr@10": r["mrr@10"],
                     "hr@5": r["hr@5"], "ndcg@5": r["ndcg@5"], "epochs": n_ep,
                     "best_epoch": info.get("best_epoch", 0), "valid_ndcg@10": info.get("best_score"),
                     "out_of_time": info.get("out_of_time", False),
                     "train_seconds": train_s, "seconds_to_best": info.get("seconds_to_best", train_s),
                     "seconds_per_epoch": train_s / n_ep if n_ep else None, "eval_seconds": eval_s,
                     "peak_rss_mb": peak_rss_mb(), **calib, **(ungated if proto == "B" else {})})
    return rows


def kept_rows(out: Path, names: Sequence[str]) -> list[dict]:
    """The rows of an earlier benchmark file ``out`` for models other than ``names`` ([] when
    there is no such file): what ``--append`` keeps (row labels as :func:`row_name` gives)."""
    if not Path(out).is_file():
        return []
    return [r for r in json.loads(Path(out).read_text()).get("rows", []) if r.get("model") not in names]


def memory_check(n_items: int = 1_000_000, n_users: int = 5000, seed: int = 0) -> dict:
    """Full-ranking evaluation (protocols A and B) of an untrained SASRec over a simulated
    catalogue of ``n_items`` items; returns timings and the process's peak RSS.

    Example (not run, ~1 min): ``memory_check(1_000_000)["peak_rss_mb"] < 4096``
    """
    import torch

    from shopml.evaluation.protocols import auto_batch_size, evaluate
    from shopml.recommend.nets import SASRec

    rng = np.random.default_rng(seed)
    lens = rng.integers(3, 30, n_users)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    items = (rng.zipf(1.2, indptr[-1]) % n_items + 1).astype(np.int64)  # skewed popularity
    targets = (rng.zipf(1.2, n_users) % n_items + 1).astype(np.int64)
    torch.manual_seed(seed)
    net = SASRec(n_items, dim=64, max_len=50).eval()
    t0 = time.perf_counter()
    res = evaluate(lambda h, u: net.score(h[:, -50:]), indptr, items, targets, n_items=n_items)
    return {"n_items": n_items, "n_users": n_users, "batch_users": auto_batch_size(n_items),
            "eval_seconds": time.perf_counter() - t0, "ndcg@10_A": res["A"]["ndcg@10"],
            "peak_rss_mb": peak_rss_mb()}


def run_memory(n_items: int = 1_000_000, n_users: int = 5000) -> BenchmarkResult:
    """:func:`memory_check` as a one-row benchmark (target: < 4 GB at 1M items).

    Example:
        >>> run_memory(1000, 20).rows[0]["n_items"]
        1000
    """
    row = memory_check(n_items, n_users)
    return BenchmarkResult(f"simulated {n_items:,}-item catalogue", [{"model": "sasrec (untrained)", **row}])
