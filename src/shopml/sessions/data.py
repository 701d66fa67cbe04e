"""GRU4Rec's training data: session-parallel mini-batches and the shared negative sampler
(ids, CSR and padding are the data layer's: :mod:`shopml.data.sequences`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

__all__ = [
    "session_parallel_batches",
    "SessionBatch",
    "NegativeSampler",
]


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
        self._cache, self._ptr, self._block_state = None, 0, None

    def draw(self) -> np.ndarray:
        if self._cache is None or self._ptr >= len(self._cache):
            self._refill()
        out = self._cache[self._ptr]
        self._ptr += 1
        return out

    def _refill(self) -> None:
        self._block_state = self.rng.bit_generator.state  # where this block starts: see state_dict
        u = self.rng.random(self.per_block * self.n_sample)
        self._cache = np.searchsorted(self.cdf, u, side="right").reshape(self.per_block, self.n_sample)
        self._ptr = 0

    def state_dict(self) -> dict:
        """Position in the draw stream, JSON-able: the RNG state where the current block starts
        and the offset in it (the block itself is redrawn on load rather than stored)."""
        if self._cache is None:
            return {"rng": self.rng.bit_generator.state, "ptr": None}
        return {"rng": self._block_state, "ptr": self._ptr}

    def load_state_dict(self, state: dict) -> None:
        """Continue the stream exactly where :meth:`state_dict` was taken."""
        self.rng.bit_generator.state = state["rng"]
        self._cache, self._ptr = None, 0
        if state["ptr"] is not None:
            self._refill()
            self._ptr = int(state["ptr"])

