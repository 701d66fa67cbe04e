"""The cold-start benchmark (``shopml benchmark cold-start``): items that no one has bought yet.

A share ``new_items`` of the catalogue (drawn with ``seed``) is held out of training together
with every interaction with it, as if those items went on sale after the model was trained.
Models train on the leave-one-out training part without them (early-stopping on the
validation item where it is not new), then get the new items through
:meth:`~shopml.recommend.base.SequentialRecommender.add_items`, with their features and no
retraining. The test users are those whose last item (the leave-one-out test target) is a
new item; their history is everything before it, new items removed. Ranking is over the
whole catalogue, old and new items, history excluded (protocol A).

Rows: ``model`` (``sasrec-features``, ``caser-features``, ``category-pop``, ``random``),
``hr@10``, ``ndcg@10`` and ``new_item_share`` (the share of new items in the top 10), and the
same HR and NDCG for the test users whose target is an old item (``hr@10_old``,
``ndcg@10_old``). Each model but random has a second row, ``... + 2 new slots``: the same
scores under the request-time rule :class:`~shopml.recommend.rules.Rules` ``(new_slots=2)``,
which keeps two of the ten slots for the best-scored new items (what a shop that wants new
products shown would serve), so the baseline gets the same help as the models.

Example:
    >>> res = run_cold_start("Beauty.txt", "Beauty_item2attributes.json")  # doctest: +SKIP
    >>> [r["model"] for r in res.rows]                                        # doctest: +SKIP
    ['sasrec-features', 'sasrec-features + 2 new slots', 'caser-features', 'caser-features + 2 new slots',
     'category-pop', 'category-pop + 2 new slots', 'random']
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from shopml.benchmarks._common import BenchmarkResult, peak_rss_mb
from shopml.errors import ConfigError, DataError

__all__ = ["COLD_MODELS", "cold_split", "run_cold_start", "slate_metrics"]

log = logging.getLogger(__name__)

COLD_MODELS = ("sasrec", "caser", "category-pop", "random")


def cold_split(seqs, new_share: float, seed: int = 0) -> dict:
    """Hold out ``new_share`` of the items. Returns the training sequences and validation
    targets over the old items (their own id map), the test histories, the test targets that
    are new items (``test``) and those that are old ones (``test_old``), and the raw ids of
    the new items (model indices ``n_old + 1 ..`` once added in this order)."""
    from shopml.data.sequences import IdMap, Sequences, leave_one_out

    if not 0 < new_share < 1:
        raise ConfigError(f"--new-items must be between 0 and 1, got {new_share}")
    n = seqs.n_items
    rng = np.random.default_rng(seed)
    is_new = np.zeros(n + 1, dtype=bool)
    is_new[1 + rng.choice(n, size=max(1, int(round(new_share * n))), replace=False)] = True
    old_idx = np.flatnonzero(~is_new[1:]) + 1
    new_idx = np.flatnonzero(is_new[1:]) + 1
    ids = seqs.item_map.to_list()
    remap = np.zeros(n + 1, dtype=np.int64)
    remap[old_idx] = np.arange(1, len(old_idx) + 1)
    remap[new_idx] = len(old_idx) + np.arange(1, len(new_idx) + 1)
    train, valid, test = leave_one_out(seqs)
    old_map = IdMap([ids[i - 1] for i in old_idx])

    def old_only(s: Sequences) -> Sequences:
        kept = s.select_events(~is_new[s.items])
        return Sequences(kept.indptr, remap[kept.items], kept.user_ids, old_map)

    train_old = old_only(train)
    valid_old = np.where(is_new[valid], 0, remap[valid])
    test_hist = old_only(train.append(np.where(is_new[valid], 0, valid)))
    test_t = np.where(is_new[test] & (test > 0), remap[test], 0)
    test_old = np.where(~is_new[test] & (test > 0), remap[test], 0)
    return {"train": train_old, "valid": valid_old, "test_hist": test_hist, "test": test_t, "test_old": test_old,
            "new_ids": [ids[i - 1] for i in new_idx], "n_old": len(old_idx)}


def slate_metrics(score_fn, hist_seqs, targets: np.ndarray, n_old: int, k: int = 10, batch: int = 1024,
                  rules=None) -> dict:
    """HR@k, NDCG@k and the share of new items (index > ``n_old``) in the top k, history
    excluded, over the rows with a target; with ``rules`` (a
    :class:`~shopml.recommend.rules.Rules` of ``new_slots``) the slates are the rules'."""
    from shopml.recommend.base import padded_rows

    indptr, items = np.asarray(hist_seqs.indptr), np.asarray(hist_seqs.items)
    rows_all = np.flatnonzero(targets > 0)
    hits, gains, new = [], [], []
    for s in range(0, len(rows_all), batch):
        rows = rows_all[s : s + batch]
        width = max(int((indptr[rows + 1] - indptr[rows]).max()), 1)
        hist = padded_rows(indptr, items, rows, width)
        scores = score_fn(hist, torch.from_numpy(rows + 1)).clone()
        scores.scatter_(1, hist, float("-inf"))
        scores[:, 0] = float("-inf")
        if rules is None:
            top = scores.topk(k, dim=1).indices
        else:
            n = scores.shape[1] - 1
            fresh = torch.arange(n + 1) > n_old
            ok = torch.arange(n + 1) > 0
            top = torch.tensor(rules.select_many(scores, ok, k, [""] * (n + 1), {}, fresh))
        match = top == torch.from_numpy(targets[rows])[:, None]
        pos = match.float().argmax(1)
        hit = match.any(1)
        hits.append(hit.numpy())
        gains.append(np.where(hit.numpy(), 1.0 / np.log2(pos.numpy() + 2.0), 0.0))
        new.append((top > n_old).float().mean(1).numpy())
    cat = lambda a: np.concatenate(a) if a else np.zeros(0)  # noqa: E731
    h, g, nw = cat(hits), cat(gains), cat(new)
    return {f"hr@{k}": float(h.mean()) if h.size else math.nan, f"ndcg@{k}": float(g.mean()) if g.size else math.nan,
            "new_item_share": float(nw.mean()) if nw.size else math.nan, "n_targets": int(h.size)}


def run_cold_start(data: Path, item_features: Path, *, new_items: float = 0.1, models: Sequence[str] = COLD_MODELS,
                   threads: int = 2, epochs: int | None = None, max_seconds: float | None = None,
                   seed: int = 0) -> BenchmarkResult:
    """The cold-start rows of ``data`` (a Beauty-format or event file) with ``item_features``."""
    from shopml.benchmarks.recommend import make_model, read_sequences
    from shopml.data.features import read_item_features
    from shopml.recommend.baselines import CategoryPopularity

    for m in models:
        if m not in COLD_MODELS:
            raise ConfigError(f"unknown model {m!r}; choose from {', '.join(COLD_MODELS)}")
    feats = read_item_features(item_features)
    seqs = read_sequences(Path(data))
    sp = cold_split(seqs, new_items, seed)
    if not (sp["test"] > 0).any():
        raise DataError("no test target is a new item; raise --new-items", path=data)
    extra = {"threads": threads, "new_items": new_items, "n_new_items": len(sp["new_ids"]),
             "feature_coverage_new": round(feats.coverage(sp["new_ids"]), 4),
             "protocol_note": "held-out items and all their interactions are out of training; test users are "
                              "those whose leave-one-out target is a held-out item; full ranking over old and "
                              "new items, history excluded"}
    res = BenchmarkResult(f"{Path(data).name} cold start", [], extra)
    for name in models:
        t0 = time.perf_counter()
        if name == "random":
            g = torch.Generator().manual_seed(seed)
            n_all = sp["n_old"] + len(sp["new_ids"])
            fn = lambda h, u: torch.rand(h.shape[0], n_all + 1, generator=g)  # noqa: E731
            label = "random"
        else:
            if name == "category-pop":
                model = CategoryPopularity().fit(sp["train"].append(sp["valid"]), item_features=feats)
                label = name
            else:
                model = make_model(name, threads=threads, epochs=epochs, max_seconds=max_seconds)
                model.fit(sp["train"], sp["valid"], item_features=feats)
                label = f"{name}-features"
            model.add_items(sp["new_ids"], feats)
            fn = model.score_batch
        train_s = time.perf_counter() - t0
        log.info("cold-start: scoring %s", label)
        res.rows.append({"model": label, **_scored(fn, sp), "train_seconds": train_s, "peak_rss_mb": peak_rss_mb()})
        if name != "random":
            from shopml.recommend.rules import Rules

            res.rows.append({"model": f"{label} + 2 new slots", **_scored(fn, sp, Rules(new_slots=2)),
                             "train_seconds": train_s})
    return res


def _scored(fn, sp: dict, rules=None) -> dict:
    """The new-item-target metrics, plus HR@10 and NDCG@10 of the users whose next item is an
    old one (``..._old``): what showing new items costs them."""
    old = slate_metrics(fn, sp["test_hist"], sp["test_old"], sp["n_old"], rules=rules)
    return {**slate_metrics(fn, sp["test_hist"], sp["test"], sp["n_old"], rules=rules),
            "hr@10_old": old["hr@10"], "ndcg@10_old": old["ndcg@10"], "n_targets_old": old["n_targets"]}
