"""Leave-one-out, full-ranking evaluation of next-item recommenders, batched over users.

Every item of the catalogue is ranked for every user (no sampled metrics). Two protocols:

* **A**: items already in the user's history are not candidates (the S3-Rec table protocol);
  the target itself always stays a candidate (:func:`shopml.evaluation.metrics.target_ranks`);
* **B**: nothing is excluded.

Users are scored ``batch_size`` at a time and each batch is ranked under both protocols from
one scoring pass, so memory is ``batch_size x n_items`` floats, never ``n_users x n_items``.
The default ``batch_size`` keeps a score block near 16M floats (64 MB): 1,024 users on a 12k
catalogue, 16 users on a 1M-item one. Ties count pessimistically (see ``target_ranks``).

Example:
    >>> import numpy as np, torch
    >>> pop = torch.tensor([float("-inf"), 3.0, 2.0, 1.0])
    >>> score = lambda hist, users: pop.expand(len(hist), -1).clone()
    >>> res = evaluate(score, np.array([0, 1, 2]), np.array([1, 2]), np.array([2, 1]), ks=(1,))
    >>> res["A"]["hr@1"], res["B"]["hr@1"]
    (1.0, 0.5)
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from shopml.data.sequences import pad_left
from shopml.evaluation.metrics import hit_rate, hit_rate_sets, mrr, ndcg, ndcg_sets, target_ranks

__all__ = ["evaluate", "rank_targets", "evaluate_model", "evaluate_windows", "metrics_from_ranks", "auto_batch_size",
           "row_mask"]

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def auto_batch_size(n_items: int, budget: int = 1 << 24) -> int:
    """Users per batch so that one ``[batch, n_items + 1]`` score block holds ~``budget`` floats.

    Example:
        >>> auto_batch_size(12101), auto_batch_size(1_000_000)
        (1024, 16)
    """
    return int(min(1024, max(1, budget // (n_items + 1))))


def _padded(indptr: np.ndarray, items: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """Full histories of ``rows``, left-padded to the longest of the batch."""
    starts, ends = indptr[rows], indptr[rows + 1]
    return torch.from_numpy(pad_left(items, starts, ends, max(int((ends - starts).max()), 1)))


def _by_length(indptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows`` ordered by history length, so a batch is padded to the length of its own rows
    rather than to the longest history of the file: in index order nearly every Beauty batch
    of a thousand users holds one of 50 items, while the mean history is 9."""
    return rows[np.argsort(indptr[rows + 1] - indptr[rows], kind="stable")]


def rank_targets(
    score_fn: ScoreFn,
    indptr: np.ndarray,
    items: np.ndarray,
    targets: np.ndarray,
    *,
    users: np.ndarray | None = None,
    protocols: tuple[str, ...] = ("A", "B"),
    batch_size: int | None = None,
    n_items: int | None = None,
) -> dict[str, np.ndarray]:
    """1-based rank of each user's target under each protocol; users whose target is 0 are skipped.

    Args:
        score_fn: ``(hist LongTensor[b, L] left-padded, users LongTensor[b]) -> scores [b, n_items+1]``.
        indptr, items: CSR histories (1-based item indices), one row per user.
        targets: int ``[n_users]`` item index to rank per user (0 = no target).
        users: the user id passed to ``score_fn`` per row (default ``row + 1``; 0 = unknown).
    """
    indptr, items = np.asarray(indptr, np.int64), np.asarray(items, np.int64)
    targets = np.asarray(targets, np.int64)
    rows_all = np.flatnonzero(targets > 0)
    users = np.arange(1, len(targets) + 1) if users is None else np.asarray(users)
    n_items = n_items if n_items is not None else int(max(items.max(initial=0), targets.max(initial=0)))
    bs = batch_size or auto_batch_size(n_items)
    out: dict[str, list] = {p: [] for p in protocols}
    order = _by_length(indptr, rows_all)
    with torch.no_grad():
        for s in range(0, len(order), bs):
            rows = order[s : s + bs]
            hist = _padded(indptr, items, rows)
            scores = score_fn(hist, torch.from_numpy(users[rows]).long())
            scores[:, 0] = float("-inf")  # the padding column is never a candidate
            tgt = torch.from_numpy(targets[rows])
            for p in protocols:
                ranks = target_ranks(scores, tgt, hist if p == "A" else None)
                out[p].append(ranks.numpy())
    back = np.argsort(order, kind="stable")  # rows_all is ascending: this puts ranks back in its order
    return {p: (np.concatenate(v)[back] if v else np.zeros(0, np.int64)) for p, v in out.items()}


def metrics_from_ranks(ranks: np.ndarray, ks=(5, 10, 20)) -> dict[str, float]:
    """``hr@k``, ``ndcg@k`` and ``mrr@k`` for every k.

    Example:
        >>> metrics_from_ranks(np.array([1, 3]), ks=(1,))
        {'hr@1': 0.5, 'ndcg@1': 0.5, 'mrr@1': 0.5}
    """
    out = {}
    for k in ks:
        out[f"hr@{k}"] = hit_rate(ranks, k)
        out[f"ndcg@{k}"] = ndcg(ranks, k)
        out[f"mrr@{k}"] = mrr(ranks, k)
    return out


def evaluate(score_fn: ScoreFn, indptr, items, targets, *, users=None, ks=(5, 10, 20),
             protocols: tuple[str, ...] = ("A", "B"), batch_size: int | None = None,
             n_items: int | None = None) -> dict[str, dict[str, float]]:
    """Metrics per protocol: ``{"A": {"hr@10": ..., "ndcg@10": ...}, "B": {...}}``."""
    ranks = rank_targets(score_fn, indptr, items, targets, users=users, protocols=protocols,
                         batch_size=batch_size, n_items=n_items)
    return {p: {**metrics_from_ranks(r, ks), "n_users": int(len(r))} for p, r in ranks.items()}


def evaluate_model(model, sequences, targets, *, ks=(5, 10, 20), protocols=("A", "B"),
                   batch_size: int | None = None) -> dict[str, dict[str, float]]:
    """Evaluate a fitted :class:`shopml.recommend.base.SequentialRecommender` whose users are
    the rows of ``sequences`` (the histories to rank after) on ``targets``.

    Example:
        >>> from shopml.recommend.base import sequences_from_lists
        >>> from shopml.recommend.baselines import MostPopular
        >>> s = sequences_from_lists([["a", "b"], ["b", "c"]])
        >>> m = MostPopular().fit(s)
        >>> r = evaluate_model(m, s, np.array([3, 1]), ks=(1,))  # "b" is most popular
        >>> r["A"]["hr@1"], r["B"]["hr@1"]   # A drops each user's history, so "b" is out
        (1.0, 0.0)
    """
    return evaluate(model.score_batch, sequences.indptr, sequences.items, targets, ks=ks,
                    protocols=protocols, batch_size=batch_size, n_items=model.n_items_)


def evaluate_windows(score_fn: ScoreFn, hist_indptr, hist_items, target_indptr, target_items, *,
                     users=None, k: int = 10, batch_size: int | None = None,
                     n_items: int | None = None, target_values=None) -> dict[str, dict[str, float]]:
    """HR@k and NDCG@k of each user's *set* of future items (a time window), full ranking.
    With ``target_values`` (one amount per target entry, e.g. the revenue the user spent on
    that item in the window) also ``revenue@k``: the mean over users of the amounts of the
    slate's items the user bought.

    Row ``u`` ranks every item after history ``hist[u]`` against targets ``target[u]`` (both
    CSR, 1-based item indices). Two protocols, as in :func:`evaluate`:

    * **A** (history excluded): history items are not candidates and do not count as targets,
      so A measures finding *new* items; rows whose targets are all in the history are skipped;
    * **B** (nothing excluded): every target counts, so re-buying a history item is a hit.

    Example:
        >>> import numpy as np, torch
        >>> pop = torch.tensor([float("-inf"), 3.0, 2.0, 1.0])
        >>> score = lambda h, u: pop.expand(len(h), -1).clone()
        >>> r = evaluate_windows(score, np.array([0, 1]), np.array([1]), np.array([0, 2]), np.array([1, 3]), k=1)
        >>> r["A"]["hr@1"], r["B"]["hr@1"]   # A drops item 1 (bought before); B counts its re-buy
        (0.0, 1.0)
    """
    hist_indptr, hist_items = np.asarray(hist_indptr, np.int64), np.asarray(hist_items, np.int64)
    target_indptr, target_items = np.asarray(target_indptr, np.int64), np.asarray(target_items, np.int64)
    n_rows = len(target_indptr) - 1
    # ordered by history length (padding), which a result of means over rows does not see
    rows_all = _by_length(hist_indptr, np.flatnonzero(np.diff(target_indptr) > 0))
    users = np.arange(1, n_rows + 1) if users is None else np.asarray(users)
    n_items = n_items or int(max(hist_items.max(initial=0), target_items.max(initial=0)))
    bs = batch_size or auto_batch_size(n_items)
    hits = {"A": [], "B": []}
    n_rel = {"A": [], "B": []}
    value = {"A": [], "B": []}
    tv = None if target_values is None else np.asarray(target_values, np.float64)
    with torch.no_grad():
        for s in range(0, len(rows_all), bs):
            rows = rows_all[s: s + bs]
            hist = _padded(hist_indptr, hist_items, rows)
            scores = score_fn(hist, torch.from_numpy(users[rows]).long()).float()
            scores[:, 0] = float("-inf")
            relevant = row_mask(target_indptr, target_items, rows, scores.shape[1])
            seen = torch.zeros_like(relevant).scatter_(1, hist, True)
            seen[:, 0] = False
            for p in ("A", "B"):
                sc, rel = scores, relevant
                if p == "A":
                    sc, rel = scores.masked_fill(seen, float("-inf")), relevant & ~seen
                top = sc.topk(min(k, sc.shape[1] - 1), dim=1).indices
                hits[p].append(rel.gather(1, top).numpy())
                n_rel[p].append(rel.sum(1).numpy())
                if tv is not None:
                    amounts = _row_values(target_indptr, target_items, tv, rows, scores.shape[1]) * rel
                    value[p].append(amounts.gather(1, top).sum(1).numpy())
    return {p: _window_metrics(hits[p], n_rel[p], value[p] if tv is not None else None, k) for p in ("A", "B")}


def _window_metrics(hits: list, n_rel: list, values: list | None, k: int) -> dict[str, float]:
    """One protocol's metrics from its per-batch top-k hits, relevant counts and slate
    amounts (None: no ``revenue@k``); rows without a relevant target are left out."""
    h = np.concatenate(hits) if hits else np.zeros((0, k), bool)
    n = np.concatenate(n_rel) if n_rel else np.zeros(0, np.int64)
    keep = n > 0
    out = {f"hr@{k}": hit_rate_sets(h[keep], k), f"ndcg@{k}": ndcg_sets(h[keep], n[keep], k),
           "n_users": int(keep.sum())}
    if values is not None:
        v = np.concatenate(values) if values else np.zeros(0)
        out[f"revenue@{k}"] = float(v[keep].mean()) if keep.any() else float("nan")
    return out


def _row_values(indptr: np.ndarray, items: np.ndarray, values: np.ndarray, rows: np.ndarray, width: int) -> torch.Tensor:
    """Float ``[len(rows), width]``: each row's amount at its items (0 elsewhere)."""
    starts, ends = indptr[rows], indptr[rows + 1]
    pos = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)]) if len(rows) else np.zeros(0, np.int64)
    r = np.repeat(np.arange(len(rows)), ends - starts)
    out = torch.zeros(len(rows), width, dtype=torch.float64)
    out.index_put_((torch.from_numpy(r), torch.from_numpy(items[pos].astype(np.int64))),
                   torch.from_numpy(values[pos]), accumulate=True)
    return out


def row_mask(indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, width: int) -> torch.Tensor:
    """Bool ``[len(rows), width]``: True at each row's items.

    Example:
        >>> row_mask(np.array([0, 2, 3]), np.array([1, 3, 2]), np.array([1, 0]), 4).int().tolist()
        [[0, 0, 1, 0], [0, 1, 0, 1]]
    """
    starts, ends = indptr[rows], indptr[rows + 1]
    lens = ends - starts
    r = np.repeat(np.arange(len(rows)), lens)
    cols = items[np.concatenate([np.arange(a, b) for a, b in zip(starts, ends)])] if len(rows) else np.zeros(0, np.int64)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    mask[torch.from_numpy(r), torch.from_numpy(cols.astype(np.int64))] = True
    return mask
