"""Session data plumbing shared by the session models: item index, session-parallel
mini-batches and the shared negative sampler. The SR-GNN files are read by
:func:`shopml.data.public.read_sessions` and :func:`~shopml.data.public.read_prefix_targets`.

Example:
    >>> idx = ItemIndex.build([["a", "b"], ["b", "c"]])
    >>> idx.n_items, idx.encode(["b", "zzz"]).tolist()
    (3, [2, 0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

__all__ = [
    "ItemIndex",
    "session_parallel_batches",
    "SessionBatch",
    "NegativeSampler",
    "pad_left",
]


class ItemIndex:
    """Raw item id (string) <-> index. Index 0 is padding / unknown; items are 1..n.

    Example:
        >>> ItemIndex(["x", "y"]).decode([2, 1])
        ['y', 'x']
    """

    def __init__(self, ids: Sequence[str]):
        self.ids = [str(i) for i in ids]
        self._pos = {s: k + 1 for k, s in enumerate(self.ids)}

    @classmethod
    def build(cls, sessions: Sequence[Sequence]) -> "ItemIndex":
        """Index every item seen in ``sessions`` (order of first appearance)."""
        seen: dict[str, None] = {}
        for s in sessions:
            for it in s:
                seen.setdefault(str(it), None)
        return cls(list(seen))

    @property
    def n_items(self) -> int:
        return len(self.ids)

    def encode(self, items: Sequence) -> np.ndarray:
        """Indices of ``items``; unknown items map to 0."""
        get = self._pos.get
        return np.fromiter((get(str(i), 0) for i in items), dtype=np.int64, count=len(items))

    def decode(self, idx: Sequence[int]) -> list[str]:
        return [self.ids[int(i) - 1] for i in idx]


def encode_sessions(index: ItemIndex, sessions: Sequence[Sequence]) -> tuple[np.ndarray, np.ndarray]:
    """Encode sessions into CSR form ``(indptr, items)``; unknown items are dropped."""
    lengths, chunks = [], []
    for s in sessions:
        e = index.encode(s)
        e = e[e > 0]
        chunks.append(e)
        lengths.append(len(e))
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(lengths)
    items = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    return indptr, items


@dataclass
class SessionBatch:
    """One step of session-parallel training.

    ``carry`` indexes the rows of the previous hidden state that continue into this step
    (None: all of them, unchanged order); ``reset`` marks rows whose session starts at
    this step, whose hidden state must be zeroed. ``inputs``/``targets`` are item indices.
    """

    inputs: np.ndarray
    targets: np.ndarray
    reset: np.ndarray
    carry: np.ndarray | None


def session_parallel_batches(indptr: np.ndarray, items: np.ndarray, batch_size: int) -> Iterator[SessionBatch]:
    """Session-parallel mini-batches (Hidasi et al. 2016, Fig. 2).

    Each of ``batch_size`` slots walks through one session, one event per step (input =
    event t, target = event t+1). When a slot's session ends, the next unused session
    takes the slot and its hidden state is reset. Sessions are taken in file order (the
    SR-GNN file is in time order, as the official implementation's ``session_order='time'``).
    Sessions shorter than 2 events have no target and are skipped. When no sessions are
    left, finished slots are dropped (``carry``) and the batch shrinks.

    Example:
        >>> b = list(session_parallel_batches(np.array([0, 3, 5]), np.array([1, 2, 3, 4, 5]), 1))
        >>> [(x.inputs.tolist(), x.targets.tolist(), x.reset.tolist()) for x in b]
        [([1], [2], [True]), ([2], [3], [False]), ([4], [5], [True])]
    """
    lengths = np.diff(indptr)
    order = np.flatnonzero(lengths >= 2)
    n = min(batch_size, len(order))
    if n == 0:
        return
    pos = indptr[order[:n]].copy()
    end = indptr[order[:n] + 1].copy()
    nxt = n
    reset = np.ones(n, dtype=bool)
    carry = None
    while True:
        yield SessionBatch(items[pos], items[pos + 1], reset, carry)
        pos += 1
        done = pos + 1 >= end
        reset = done.copy()
        n_done = int(done.sum())
        if n_done:
            take = order[nxt : nxt + n_done]
            nxt += len(take)
            rows = np.flatnonzero(done)
            refill, drop = rows[: len(take)], rows[len(take) :]
            pos[refill], end[refill] = indptr[take], indptr[take + 1]
            carry = None
            if len(drop):
                keep = np.setdiff1d(np.arange(len(pos)), drop)
                if len(keep) == 0:
                    return
                pos, end, reset, carry = pos[keep], end[keep], reset[keep], keep
        else:
            carry = None


class NegativeSampler:
    """Draws ONE set of negatives per step, shared by every row of the mini-batch, from
    popularity**alpha (official GRU4Rec's sample sharing: the output layer then costs one
    (B, B + n) matrix product). Samples are pre-drawn in large blocks for speed.

    Example:
        >>> s = NegativeSampler(np.array([0, 5, 1, 1]), n_sample=4, alpha=1.0, seed=0)
        >>> s.draw().shape
        (4,)
    """

    def __init__(self, counts: np.ndarray, n_sample: int, alpha: float, seed: int = 0, block: int = 2_000_000):
        p = np.asarray(counts, dtype=np.float64) ** alpha
        p[0] = 0.0  # never sample padding
        self.cdf = np.cumsum(p) / p.sum()
        self.cdf[-1] = 1.0
        self.n_sample, self.rng = n_sample, np.random.default_rng(seed)
        self.per_block = max(1, block // max(n_sample, 1))
        self._cache, self._ptr = None, 0

    def draw(self) -> np.ndarray:
        if self._cache is None or self._ptr >= len(self._cache):
            u = self.rng.random(self.per_block * self.n_sample)
            self._cache = np.searchsorted(self.cdf, u, side="right").reshape(self.per_block, self.n_sample)
            self._ptr = 0
        out = self._cache[self._ptr]
        self._ptr += 1
        return out


def pad_left(seqs: Sequence[np.ndarray], max_len: int | None = None) -> np.ndarray:
    """Right-align index sequences into a (B, L) matrix, 0 = padding. Only the last
    ``max_len`` items of a longer sequence are kept.

    Example:
        >>> pad_left([np.array([1, 2]), np.array([3])]).tolist()
        [[1, 2], [0, 3]]
    """
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    L = int(lengths.max()) if len(lengths) else 0
    if max_len is not None:
        L = min(L, max_len)
    out = np.zeros((len(seqs), max(L, 1)), dtype=np.int64)
    if L == 0:
        return out
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in seqs])
    # position of each element counted from its sequence's end (0 = last)
    ends = np.cumsum(lengths)
    from_end = np.repeat(ends, lengths) - np.arange(len(flat)) - 1
    rows = np.repeat(np.arange(len(seqs)), lengths)
    keep = from_end < L
    out[rows[keep], out.shape[1] - 1 - from_end[keep]] = flat[keep]
    return out
