"""Evaluation metrics: pure functions, one batch at a time.

Ranking metrics work in two steps. :func:`target_ranks` turns a batch of full score rows
into the 1-based rank of each target item; :func:`hit_rate`, :func:`ndcg`, :func:`mrr`
and :func:`recall` turn ranks into numbers. :func:`rank_all` runs a scoring function over
all users in batches, so no ``n_users x n_items`` matrix is ever built.

**Ties are pessimistic**: the rank of a target is ``1 + #{other candidate items whose
score >= the target's score}``. A model that scores every item the same gets the worst
rank, not the best, so a constant model cannot look good.

Item indices follow :class:`shopml.data.sequences.IdMap`: column 0 is padding, items are
``1..n``. :func:`target_ranks` ranks every column it is given (exclude column 0 yourself, or
use :func:`rank_all`, which always does).

Point metrics (:func:`auc`, :func:`log_loss`, :func:`mae`, :func:`rmse`, :func:`wape`) take
numpy arrays (or anything ``np.asarray`` accepts) and return floats.

Example:
    >>> import torch
    >>> scores = torch.tensor([[0.0, 0.9, 0.5, 0.1], [0.0, 0.2, 0.2, 0.7]])
    >>> r = target_ranks(scores, torch.tensor([2, 1]))
    >>> r.tolist()
    [2, 3]
    >>> hit_rate(r, 2), round(ndcg(r, 10), 4), mrr(r, 10)
    (0.5, 0.5655, 0.41666666666666663)
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

__all__ = [
    "target_ranks",
    "rank_all",
    "hit_rate",
    "ndcg",
    "mrr",
    "recall",
    "hit_rate_sets",
    "ndcg_sets",
    "auc",
    "log_loss",
    "expected_calibration_error",
    "mae",
    "rmse",
    "wape",
]


# ----------------------------------------------------------------------------- ranks


def _exclusion_mask(exclude: torch.Tensor, shape: torch.Size, pad: int) -> torch.Tensor:
    """Bool ``[B, N]`` mask from either a bool mask or a padded index tensor ``[B, L]``."""
    if exclude.dtype == torch.bool:
        if exclude.shape != shape:
            raise ValueError(f"exclude mask has shape {tuple(exclude.shape)}, scores {tuple(shape)}")
        return exclude.clone()
    idx = exclude.long()
    if idx.dim() != 2 or idx.shape[0] != shape[0]:
        raise ValueError(f"exclude indices must be [B, L] with B={shape[0]}, got {tuple(idx.shape)}")
    mask = torch.zeros(shape, dtype=torch.bool, device=idx.device)
    rows, cols = torch.nonzero(idx != pad, as_tuple=True)
    mask[rows, idx[rows, cols]] = True  # duplicates in a history just set True twice
    return mask


def target_ranks(
    scores: torch.Tensor,
    targets: torch.Tensor,
    exclude: torch.Tensor | None = None,
    *,
    pad: int = 0,
) -> torch.Tensor:
    """1-based rank of each target among the candidate columns of its score row.

    Args:
        scores: float ``[B, N]``, higher is better. NaN scores count as ``-inf``.
        targets: int ``[B]`` (one target per row) or ``[B, T]`` (several; entries equal to
            ``pad`` are padding and get rank 0).
        exclude: items that are not candidates (e.g. the user's history), as a bool mask
            ``[B, N]`` or an int index tensor ``[B, L]`` padded with ``pad`` (pad entries
            exclude nothing). The row's targets themselves are never excluded.
        pad: padding value of index tensors.

    Returns:
        int64 ``[B]`` (or ``[B, T]``): ``1 + #{other non-excluded columns with score >=
        the target's score}`` (ties pessimistic; other targets of the same row compete too).

    Example:
        >>> s = torch.tensor([[0.0, 0.3, 0.3, 0.9]])
        >>> target_ranks(s, torch.tensor([1])).tolist()      # tie with column 2 counts against it
        [3]
        >>> target_ranks(s, torch.tensor([1]), exclude=torch.tensor([[3, 0]])).tolist()
        [2]
    """
    scores = torch.as_tensor(scores)
    targets = torch.as_tensor(targets, device=scores.device).long()
    if scores.dim() != 2:
        raise ValueError(f"scores must be [B, N], got {tuple(scores.shape)}")
    if torch.isnan(scores).any():
        scores = torch.nan_to_num(scores, nan=float("-inf"))
    multi = targets.dim() == 2
    tgt = targets if multi else targets[:, None]
    if tgt.shape[0] != scores.shape[0]:
        raise ValueError(f"{tgt.shape[0]} targets for {scores.shape[0]} score rows")
    valid = tgt != pad if multi else torch.ones_like(tgt, dtype=torch.bool)
    safe_tgt = torch.where(valid, tgt, torch.zeros_like(tgt))
    candidates = torch.ones_like(scores, dtype=torch.bool)
    if exclude is not None:
        candidates = ~_exclusion_mask(torch.as_tensor(exclude, device=scores.device), scores.shape, pad)
        # A row's targets stay candidates even when they appear in its history.
        rows, cols = torch.nonzero(valid, as_tuple=True)
        candidates[rows, tgt[rows, cols]] = True
    target_scores = scores.gather(1, safe_tgt)  # [B, T]
    # [B, T, N] comparisons would be large for many targets; loop over the (few) targets.
    ranks = torch.empty_like(safe_tgt)
    for j in range(safe_tgt.shape[1]):
        beats = (scores >= target_scores[:, j : j + 1]) & candidates
        # The target itself is always >= itself and a candidate: that is the "1 +".
        ranks[:, j] = beats.sum(1, dtype=torch.int32)  # int32: counting into int64 took twice as long
    ranks = torch.where(valid, ranks, torch.zeros_like(ranks))
    return ranks if multi else ranks[:, 0]


def rank_all(
    score_fn: Callable[..., torch.Tensor],
    histories,
    targets,
    exclude_seen: bool = True,
    batch_size: int = 1024,
    *,
    pass_rows: bool = False,
) -> torch.Tensor:
    """Ranks of every user's target(s), scoring ``batch_size`` users at a time.

    Args:
        score_fn: maps a history batch ``LongTensor[b, L]`` (padded with 0) to scores
            ``[b, n_items + 1]`` (column 0 = padding). With ``pass_rows=True`` it is called
            as ``score_fn(histories_batch, rows)`` where ``rows`` are the users' row indices.
        histories: int ``[U, L]`` array or tensor of 1-based item indices, 0 = padding.
        targets: int ``[U]`` or ``[U, T]`` (0 = padding) item indices.
        exclude_seen: drop the history items from the candidates (targets never dropped).
        batch_size: users per call of ``score_fn``; memory is ``batch_size x n_items``.

    Returns:
        int64 ``[U]`` (or ``[U, T]``) ranks; the padding column 0 is never a candidate.

    Example:
        >>> pop = torch.tensor([0.0, 5.0, 3.0, 1.0])
        >>> h = torch.tensor([[1, 0], [2, 1]])
        >>> rank_all(lambda hb: pop.expand(len(hb), -1), h, torch.tensor([2, 3])).tolist()
        [1, 1]
    """
    histories = torch.as_tensor(np.asarray(histories) if not torch.is_tensor(histories) else histories).long()
    targets = torch.as_tensor(np.asarray(targets) if not torch.is_tensor(targets) else targets).long()
    out = []
    with torch.no_grad():
        for start in range(0, histories.shape[0], batch_size):
            rows = torch.arange(start, min(start + batch_size, histories.shape[0]))
            hist = histories[rows]
            scores = score_fn(hist, rows) if pass_rows else score_fn(hist)
            mask = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
            mask[:, 0] = True
            if exclude_seen:
                mask.scatter_(1, hist.to(scores.device), True)  # pads hit column 0, already True
            out.append(target_ranks(scores, targets[rows].to(scores.device), mask).cpu())
    if not out:
        return torch.zeros(targets.shape, dtype=torch.long)
    return torch.cat(out)


# ----------------------------------------------------------------------- rank metrics


def _ranks_np(ranks) -> np.ndarray:
    if torch.is_tensor(ranks):
        ranks = ranks.detach().cpu().numpy()
    return np.asarray(ranks, dtype=np.float64)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def hit_rate(ranks, k: int) -> float:
    """Share of targets ranked in the top ``k`` (HR@k).

    Example:
        >>> hit_rate([1, 3, 11], 10)
        0.6666666666666666
    """
    r = _ranks_np(ranks)
    return _mean(r <= k)


def ndcg(ranks, k: int) -> float:
    """NDCG@k for one target per row: ``1 / log2(rank + 1)`` inside the top ``k``, else 0.

    Example:
        >>> ndcg([1, 3, 11], 10)  # (1 + 1/log2(4) + 0) / 3
        0.5
    """
    r = _ranks_np(ranks)
    return _mean(np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0))


def mrr(ranks, k: int) -> float:
    """MRR@k: mean of ``1 / rank`` inside the top ``k``, else 0.

    Example:
        >>> mrr([1, 4, 30], 20)
        0.4166666666666667
    """
    r = _ranks_np(ranks)
    return _mean(np.where(r <= k, 1.0 / r, 0.0))


def recall(ranks, k: int) -> float:
    """Recall@k. For ranks ``[B]`` (one target per row) it equals :func:`hit_rate`.
    For ranks ``[B, T]`` from several targets per row (0 = padding) it is the mean over
    rows with at least one target of ``#{targets ranked <= k} / #{targets}``.

    Example:
        >>> recall([[1, 5, 0], [2, 0, 0]], 3)  # row 1: 1 of 2, row 2: 1 of 1
        0.75
    """
    r = _ranks_np(ranks)
    if r.ndim == 1:
        return hit_rate(r, k)
    valid = r > 0
    n = valid.sum(1)
    hits = ((r <= k) & valid).sum(1)
    keep = n > 0
    return _mean(hits[keep] / n[keep])


# ---------------------------------------------------------------------- point metrics


def hit_rate_sets(hits, k: int) -> float:
    """HR@k with several relevant items per row: the share of rows with a hit in the top ``k``.

    ``hits`` is bool ``[n_rows, >= k]``: whether the item at each rank is relevant.

    Example:
        >>> hit_rate_sets([[0, 1, 0], [0, 0, 0]], 2)
        0.5
    """
    h = np.asarray(hits, dtype=bool)[:, :k]
    return _mean(h.any(1).astype(float)) if h.size else float("nan")


def ndcg_sets(hits, n_relevant, k: int) -> float:
    """NDCG@k with several relevant items per row (binary gains): DCG over the top ``k``
    divided by the DCG of a ranking with all ``min(n_relevant, k)`` relevant items first.

    Example:
        >>> # row 1: hits at ranks 1 and 3 of 2 relevant -> (1 + .5) / (1 + 1/log2(3))
        >>> round(ndcg_sets([[1, 0, 1], [0, 0, 0]], [2, 1], 3), 5)
        0.45986
    """
    h = np.asarray(hits, dtype=float)[:, :k]
    if not h.size:
        return float("nan")
    disc = 1.0 / np.log2(np.arange(2, h.shape[1] + 2))
    dcg = (h * disc).sum(1)
    n = np.minimum(np.asarray(n_relevant, dtype=np.int64), h.shape[1])
    idcg = np.concatenate([[0.0], np.cumsum(disc)])[n]
    return _mean(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), 0.0))


def _pair(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y has {y.size} values, predictions {p.size}")
    return y, p


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank (vectorized)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], xs.size] - 1
    avg = (first + last) / 2.0 + 1.0
    ranks = np.empty_like(x, dtype=np.float64)
    ranks[order] = avg[group]
    return ranks


def auc(y, p) -> float:
    """ROC AUC: probability that a random positive outscores a random negative, ties
    counting one half (Mann-Whitney U with average ranks; equals sklearn's ``roc_auc_score``).

    NaN when a class is missing: the AUC is undefined there (sklearn raises). A stand-in
    0.5 would read as a chance-level model; NaN shows as ``null`` in JSON and, as an
    early-stopping monitor, never counts as an improvement. The rank sum is exact, so
    equal AUCs are equal floats and ties never look like improvements either.

    Example:
        >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
        >>> auc([0, 1], [0.5, 0.5])
        0.5
    """
    y, p = _pair(y, p)
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = _average_ranks(p)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y, p, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy; probabilities are clipped to ``[eps, 1 - eps]``.

    Example:
        >>> round(log_loss([1, 0], [0.8, 0.2]), 4)  # -log(0.8)
        0.2231
    """
    y, p = _pair(y, p)
    p = np.clip(p, eps, 1.0 - eps)
    return _mean(-(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def expected_calibration_error(y, p, n_bins: int = 10) -> float:
    """ECE: pairs binned by predicted probability into ``n_bins`` equal-width bins; the mean
    over pairs of |mean outcome - mean probability| of each pair's bin.

    Example:
        >>> expected_calibration_error([1, 0, 0, 0], [0.9, 0.1, 0.1, 0.1], n_bins=2)  # |1-.9|/4 + 3|0-.1|/4
        0.1
    """
    y, p = _pair(y, p)
    if p.size == 0:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    gap = np.abs(np.bincount(bins, y, n_bins) - np.bincount(bins, p, n_bins))
    return float(round(gap.sum() / len(p), 12))


def mae(y, y_hat) -> float:
    """Mean absolute error.

    Example:
        >>> mae([1, 2, 3], [2, 2, 1])
        1.0
    """
    y, y_hat = _pair(y, y_hat)
    return _mean(np.abs(y - y_hat))


def rmse(y, y_hat) -> float:
    """Root mean squared error.

    Example:
        >>> rmse([0, 0], [3, 4])  # sqrt((9 + 16) / 2)
        3.5355339059327378
    """
    y, y_hat = _pair(y, y_hat)
    return float(np.sqrt(np.mean((y - y_hat) ** 2))) if y.size else float("nan")


def wape(y, y_hat) -> float:
    """Weighted absolute percentage error ``sum|y - y_hat| / sum|y|`` (NaN when all y are 0).

    Example:
        >>> wape([10, 0, 10], [8, 1, 13])  # (2 + 1 + 3) / 20
        0.3
    """
    y, y_hat = _pair(y, y_hat)
    denom = np.abs(y).sum()
    return float(np.abs(y - y_hat).sum() / denom) if denom > 0 else float("nan")
