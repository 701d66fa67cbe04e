"""Session data plumbing shared by the session models: item index, file reader,
session-parallel mini-batches and the shared negative sampler.

Example:
    >>> idx = ItemIndex.build([["a", "b"], ["b", "c"]])
    >>> idx.n_items, idx.encode(["b", "zzz"]).tolist()
    (3, [2, 0])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from shopml.errors import DataError

__all__ = [
    "ItemIndex",
    "read_sessions",
    "read_prefix_targets",
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


def _parse_tokens(line: str, path: Path, row: int, column: str) -> list[str]:
    toks = line.split()
    for t in toks:
        if not t.isdigit():
            raise DataError(f"item id {t[:20]!r} is not an integer", path=path, row=row, column=column)
    return toks


def read_sessions(path) -> list[list[str]]:
    """One session per line, item ids separated by whitespace (SR-GNN ``train_sessions.txt``).

    Blank lines are skipped; a non-integer id raises DataError with file and line.
    """
    path = Path(path)
    out = [_parse_tokens(line, path, row, "session") for row, line in enumerate(_read_lines(path), start=1)]
    out = [s for s in out if s]
    if not out:
        raise DataError("no sessions (empty file)", path=path)
    return out


def read_prefix_targets(path) -> tuple[list[list[str]], list[str]]:
    """Test cases ``prefix<TAB>target`` per line (SR-GNN ``test_prefix_target.tsv``)."""
    path = Path(path)
    prefixes, targets = [], []
    for row, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError("expected 'prefix<TAB>target'", path=path, row=row, column="target")
        prefixes.append(_parse_tokens(parts[0], path, row, "prefix"))
        tgt = _parse_tokens(parts[1], path, row, "target")
        if len(tgt) != 1:
            raise DataError("expected exactly one target item", path=path, row=row, column="target")
        targets.append(tgt[0])
    if not targets:
        raise DataError("no test cases (empty file)", path=path)
    return prefixes, targets


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError("file not found", path=path)
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise DataError("binary data, expected text", path=path, row=1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        row = raw[: e.start].count(b"\n") + 1
        raise DataError("not UTF-8 text", path=path, row=row) from None
    return text.splitlines()


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
