"""Per-user chronological item sequences (CSR), stable id maps, splits and sessions.

An :class:`IdMap` maps raw item ids to indices ``1..n``; index 0 is padding, so padded
batches and embedding tables share one convention. It serializes to a JSON list, saved
beside the model so the same raw id always gets the same index when serving.

:class:`Sequences` stores every user's items in one flat array (CSR): user ``u`` owns
``items[indptr[u]:indptr[u + 1]]``, oldest first. Nothing loops over users in Python.

Example:
    >>> import polars as pl
    >>> from datetime import datetime, timezone
    >>> t = [datetime(2024, 1, 1, h, tzinfo=timezone.utc) for h in range(4)]
    >>> ev = pl.DataFrame({"user_id": ["b", "a", "a", "a"], "item_id": ["x", "y", "x", "z"],
    ...                    "timestamp": t, "event_type": ["view"] * 4})
    >>> s = build_sequences(ev)
    >>> s.user_ids, s.item_map.to_list(), s[0].tolist(), s.lengths.tolist()
    (['a', 'b'], ['x', 'y', 'z'], [2, 1, 3], [3, 1])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Iterable, Sequence

import numpy as np
import polars as pl

from shopml.errors import ConfigError, DataError

__all__ = [
    "append_targets",
    "EVENT_TYPES",
    "IdMap",
    "Sequences",
    "pad_left",
    "sequences_from_lists",
    "encode_lists",
    "build_sequences",
    "leave_one_out",
    "temporal_split",
    "sessionize",
]

#: Event type codes stored in :attr:`Sequences.event_types` (``int8``): index in this tuple.
EVENT_TYPES = ("view", "cart", "purchase", "return")


def pad_left(items: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int) -> np.ndarray:
    """The one padding helper: ``items[starts[r]:ends[r]]`` per row, its last ``width`` items,
    left-padded with 0 (most recent item in the last column): int64 ``[len(starts), width]``.
    This is the input layout of every next-item model.

    Example:
        >>> pad_left(np.array([5, 6, 7, 8]), np.array([0, 3]), np.array([3, 4]), 2).tolist()
        [[6, 7], [0, 8]]
    """
    starts, ends = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    if len(items) == 0:
        return np.zeros((len(starts), width), dtype=np.int64)
    src = ends[:, None] - width + np.arange(width)[None, :]  # position in `items` of each cell
    valid = src >= starts[:, None]
    return np.where(valid, np.asarray(items)[np.clip(src, 0, len(items) - 1)], 0).astype(np.int64)


class IdMap:
    """Raw id <-> index map. Index 0 is padding; raw ids get ``1..n`` in list order.

    Example:
        >>> m = IdMap.fit(["b", "a", "b", "c"])
        >>> len(m), m.to_list(), m.encode(["c", "a"]).tolist(), m.decode([1, 3])
        (3, ['a', 'b', 'c'], [3, 1], ['a', 'c'])
        >>> IdMap.from_list(m.to_list()) == m
        True
    """

    def __init__(self, ids: Iterable):
        self._ids = [str(i) for i in ids]
        if len(set(self._ids)) != len(self._ids):
            raise DataError("IdMap ids must be unique")
        self._lookup: dict[str, int] | None = None

    @classmethod
    def fit(cls, values) -> "IdMap":
        """Map of the distinct values, sorted, so it does not depend on event order."""
        s = pl.Series("v", values).cast(pl.Utf8).drop_nulls()
        return cls(s.unique().sort().to_list())

    @classmethod
    def first_seen(cls, histories: Sequence[Sequence]) -> "IdMap":
        """Map of the ids in ``histories`` (lists of raw ids) in order of first appearance.

        Example:
            >>> IdMap.first_seen([["b", "a"], ["a", "c"]]).to_list()
            ['b', 'a', 'c']
        """
        return cls(dict.fromkeys(str(i) for h in histories for i in h))

    @classmethod
    def from_list(cls, ids: Sequence[str]) -> "IdMap":
        """Inverse of :meth:`to_list` (the JSON form saved with models)."""
        return cls(ids)

    def extended(self, values) -> "IdMap":
        """This map with the distinct ``values`` it does not know appended (sorted), so every
        known id keeps its index: a refreshed model's tables line up with the old ones.

        Example:
            >>> IdMap(["b", "a"]).extended(["c", "a", "0"]).to_list()
            ['b', 'a', '0', 'c']
        """
        known = self._index()
        new = pl.Series("v", values).cast(pl.Utf8).drop_nulls().unique().sort().to_list()
        return IdMap(self._ids + [v for v in new if v not in known])

    def to_list(self) -> list[str]:
        """Raw ids in index order ``1..n`` (JSON-serializable)."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __eq__(self, other) -> bool:
        return isinstance(other, IdMap) and self._ids == other._ids

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)})"

    def index(self, raw) -> int:
        """Index of one raw id (0 when unknown)."""
        return self._index().get(str(raw), 0)

    def _index(self) -> dict[str, int]:
        if self._lookup is None:
            self._lookup = {r: i + 1 for i, r in enumerate(self._ids)}
        return self._lookup

    def encode(self, values, *, unknown: str = "zero") -> np.ndarray:
        """int64 indices of many raw ids; unknown ids become 0 (``unknown="zero"``) or
        raise :class:`DataError` (``unknown="error"``). Vectorized through Polars; a short
        Python list (one request's history) goes through the dict, which is faster there."""
        if isinstance(values, (list, tuple)) and len(values) < 256 and unknown == "zero":
            get = self._index().get
            return np.fromiter((get(str(v), 0) for v in values), dtype=np.int64, count=len(values))
        s = values if isinstance(values, pl.Series) else pl.Series("v", list(values) if not
                                                                   isinstance(values, np.ndarray) else values)
        s = s.cast(pl.Utf8)
        out = s.replace_strict(self._ids, np.arange(1, len(self) + 1), default=0, return_dtype=pl.Int64)
        codes = out.to_numpy()
        if unknown == "error" and (codes == 0).any():
            row = int(np.flatnonzero(codes == 0)[0])
            raise DataError(f"unknown id {s[row]!r}", row=row + 1)
        return codes

    def decode(self, indices) -> list[str]:
        """Raw ids of indices ``1..n`` (0 or out of range raises)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 1 or idx.max() > len(self)):
            raise DataError(f"indices must be in 1..{len(self)}")
        arr = np.asarray(self._ids, dtype=object)
        return arr[idx - 1].tolist()


@dataclass
class Sequences:
    """Chronological item sequences of many users in CSR form.

    Attributes:
        indptr: int64 ``[n_users + 1]``; user ``u`` owns ``items[indptr[u]:indptr[u+1]]``.
        items: int64 ``[n_events]`` 1-based item indices, oldest first within a user.
        user_ids: row ``u``'s user id (pseudonymized when it came from ``read_events``).
        item_map: raw item id <-> index.
        event_types: optional int8 ``[n_events]`` codes into :data:`EVENT_TYPES`.
        timestamps: optional ``datetime64[us]`` ``[n_events]`` (UTC).

    Example:
        >>> s = Sequences(np.array([0, 2, 3]), np.array([1, 2, 2]), ["u1", "u2"], IdMap(["a", "b"]))
        >>> s.n_users, s.n_items, s.lengths.tolist(), s[1].tolist()
        (2, 2, [2, 1], [2])
        >>> s.to_padded(3).tolist()
        [[0, 1, 2], [0, 0, 2]]
    """

    indptr: np.ndarray
    items: np.ndarray
    user_ids: list[str]
    item_map: IdMap
    event_types: np.ndarray | None = None
    timestamps: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def __len__(self) -> int:
        return self.n_users

    def __getitem__(self, u: int) -> np.ndarray:
        return self.items[self.indptr[u] : self.indptr[u + 1]]

    def user_index(self) -> np.ndarray:
        """int64 ``[n_events]``: the row (user) of every event."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), self.lengths)

    def positions(self) -> np.ndarray:
        """int64 ``[n_events]``: 0-based position of every event within its user."""
        return np.arange(len(self.items), dtype=np.int64) - np.repeat(self.indptr[:-1], self.lengths)

    def to_padded(self, max_len: int, *, pad: int = 0) -> np.ndarray:
        """int64 ``[n_users, max_len]``: each user's last ``max_len`` items, left-padded
        (most recent item in the last column), the input layout of SASRec/Caser."""
        out = pad_left(self.items, self.indptr[:-1], self.indptr[1:], max_len)
        if pad:
            lens = np.minimum(self.lengths, max_len)
            out[np.arange(max_len)[None, :] < (max_len - lens)[:, None]] = pad
        return out

    def select_events(self, keep: np.ndarray) -> "Sequences":
        """Sequences with only the events where ``keep`` (bool ``[n_events]``) is True;
        every user row is kept, possibly empty."""
        counts = np.bincount(self.user_index()[keep], minlength=self.n_users)
        return replace(
            self,
            indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            items=self.items[keep],
            event_types=None if self.event_types is None else self.event_types[keep],
            timestamps=None if self.timestamps is None else self.timestamps[keep],
        )

    def append(self, items: np.ndarray) -> "Sequences":
        """Sequences with one more item per user (0 = none), e.g. train + validation item
        as the history for the test target. Event types/timestamps are dropped."""
        items = np.asarray(items, dtype=np.int64)
        add = (items > 0).astype(np.int64)
        lengths = self.lengths + add
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        out = np.empty(indptr[-1], dtype=np.int64)
        old_pos = np.repeat(indptr[:-1], self.lengths) + self.positions()
        out[old_pos] = self.items
        out[indptr[1:][add > 0] - 1] = items[add > 0]
        return Sequences(indptr, out, self.user_ids, self.item_map)


def append_targets(indptr: np.ndarray, items: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR with ``targets[u]`` appended to row ``u`` (0 targets are skipped): test histories are
    train + validation item.

    Example:
        >>> p, i = append_targets(np.array([0, 1, 2]), np.array([4, 5]), np.array([6, 0]))
        >>> p.tolist(), i.tolist()
        ([0, 2, 3], [4, 6, 5])
    """
    add = (np.asarray(targets) > 0).astype(np.int64)
    lens = np.diff(indptr) + add
    new_ptr = np.zeros_like(indptr)
    new_ptr[1:] = np.cumsum(lens)
    out = np.zeros(new_ptr[-1], dtype=np.int64)
    row_of = np.repeat(np.arange(len(lens)), np.diff(indptr))
    pos = np.arange(len(items)) - indptr[row_of] + new_ptr[row_of]
    out[pos] = items
    has = np.flatnonzero(add)
    out[new_ptr[has + 1] - 1] = np.asarray(targets)[has]
    return new_ptr, out


def encode_lists(item_map: IdMap, histories: Sequence[Sequence]) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr, items)`` of lists of raw ids under ``item_map``; unknown ids are dropped.

    Example:
        >>> p, i = encode_lists(IdMap(["a", "b"]), [["b", "zzz", "a"], []])
        >>> p.tolist(), i.tolist()
        ([0, 2, 2], [2, 1])
    """
    get = item_map._index().get
    rows = [[j for j in (get(str(i), 0) for i in h) if j] for h in histories]
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    return indptr, np.fromiter((j for r in rows for j in r), dtype=np.int64, count=int(indptr[-1]))


def sequences_from_lists(histories: Sequence[Sequence], user_ids: Sequence[str] | None = None,
                         item_map: IdMap | None = None) -> Sequences:
    """Sequences from per-user lists of raw item ids, items indexed ``1..n`` in order of first
    appearance (:meth:`IdMap.first_seen`), or by ``item_map`` (ids it lacks are dropped).
    Sessions, request-time histories and tests use it.

    Example:
        >>> s = sequences_from_lists([["x", "y"], ["y"]])
        >>> s.indptr.tolist(), s.items.tolist(), s.item_map.to_list()
        ([0, 2, 3], [1, 2, 2], ['x', 'y'])
    """
    item_map = IdMap.first_seen(histories) if item_map is None else item_map
    indptr, flat = encode_lists(item_map, histories)
    users = [str(u) for u in user_ids] if user_ids is not None else [f"u{i}" for i in range(len(histories))]
    return Sequences(indptr, flat, users, item_map)


def _sorted_events(events: pl.DataFrame, by: str) -> tuple[pl.DataFrame, IdMap]:
    """Events sorted by (``by``, timestamp, file order), with an int column ``_g``: the
    1-based index of ``by`` in the returned (sorted) map; rows whose key is null are dropped.

    Sorting 10M string keys directly costs seconds; dense int codes from a hash join
    sort several times faster, and data already sorted (as ``read_events`` returns it)
    is detected and not sorted again.
    """
    for col in (by, "item_id", "timestamp"):
        if col not in events.columns:
            raise DataError("missing required column", column=col)
    groups = IdMap.fit(events[by])
    codes = groups.encode(events[by])
    df = events.with_columns(_g=pl.Series(codes))
    if (codes == 0).any():
        df = df.filter(pl.col("_g") > 0)
        codes = df["_g"].to_numpy()
    t = df["timestamp"].to_physical().to_numpy()
    dg, dt = np.diff(codes), np.diff(t)
    if not ((dg >= 0).all() and ((dg > 0) | (dt >= 0)).all()):
        # The row index as last key keeps file order for equal timestamps (a stable sort).
        df = df.with_row_index("_r").sort(["_g", "timestamp", "_r"]).drop("_r")
    return df, groups


def build_sequences(
    events: pl.DataFrame,
    event_types: Iterable[str] | None = None,
    *,
    by: str = "user_id",
    item_map: IdMap | None = None,
) -> Sequences:
    """Chronological per-user (or per-session with ``by="session_id"``) item sequences.

    Args:
        events: canonical events (``user_id``, ``item_id``, ``timestamp``, ``event_type``).
        event_types: keep only these event types (e.g. ``["purchase"]``); default every type
            but ``return``. Guest rows (``guest`` True) are left out of per-user sequences.
        by: the column that defines a sequence.
        item_map: reuse a fitted map (e.g. the training one); events with unknown items
            are dropped. Default: fit on these events (sorted distinct ids).

    Example:
        >>> import polars as pl
        >>> ev = pl.DataFrame({"user_id": ["u", "u"], "item_id": ["i", "j"], "timestamp": [2, 1],
        ...                    "event_type": ["view", "purchase"]})
        >>> build_sequences(ev, ["view"])[0].tolist()
        [1]
    """
    if "event_type" in events.columns:
        # returns are never an interest signal; guests are not users (their session is)
        keep = list(event_types) if event_types is not None else ["view", "cart", "purchase"]
        events = events.filter(pl.col("event_type").is_in(keep))
    if by == "user_id" and "guest" in events.columns:
        events = events.filter(~pl.col("guest").fill_null(False))
    df, groups = _sorted_events(events, by)
    item_map = IdMap.fit(df["item_id"]) if item_map is None else item_map
    items = item_map.encode(df["item_id"])
    known = items > 0
    if not known.all():
        df, items = df.filter(pl.Series(known)), items[known]
    runs = df["_g"].rle()
    lengths = runs.struct.field("len").to_numpy().astype(np.int64)
    types = None
    if "event_type" in df.columns:
        types = df["event_type"].replace_strict(list(EVENT_TYPES), range(len(EVENT_TYPES)), default=-1,
                                                return_dtype=pl.Int8)
        types = types.to_numpy()
    ts = df["timestamp"].to_numpy() if df["timestamp"].dtype.is_temporal() else None
    return Sequences(
        indptr=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=items.astype(np.int64),
        user_ids=groups.decode(runs.struct.field("value").to_numpy()),
        item_map=item_map,
        event_types=types,
        timestamps=ts,
    )


def leave_one_out(seqs: Sequences) -> tuple[Sequences, np.ndarray, np.ndarray]:
    """Leave-one-out split: last item = test target, second-last = validation target.

    Returns ``(train, valid_targets, test_targets)``. ``train`` keeps all but the last two
    items of each user; the history for validation is ``train``, for test it is
    ``train.append(valid_targets)``. Users with fewer than 3 items keep all their items in
    ``train`` and get target 0 (no target), as in SASRec; filter ``targets > 0``.

    Example:
        >>> s = Sequences(np.array([0, 4, 6]), np.array([1, 2, 3, 4, 5, 6]), ["a", "b"], IdMap("abcdef"))
        >>> train, valid, test = leave_one_out(s)
        >>> [train[u].tolist() for u in range(2)], valid.tolist(), test.tolist()
        ([[1, 2], [5, 6]], [3, 0], [4, 0])
    """
    lengths = seqs.lengths
    enough = lengths >= 3
    ends = seqs.indptr[1:]
    valid = np.where(enough, seqs.items[np.maximum(ends - 2, 0)] if len(seqs.items) else 0, 0)
    test = np.where(enough, seqs.items[np.maximum(ends - 1, 0)] if len(seqs.items) else 0, 0)
    keep_len = np.where(enough, lengths - 2, lengths)
    keep = seqs.positions() < np.repeat(keep_len, lengths)
    return seqs.select_events(keep), valid.astype(np.int64), test.astype(np.int64)


def _to_datetime(cutoff, events: pl.DataFrame) -> datetime:
    if isinstance(cutoff, float) and 0.0 < cutoff < 1.0:
        return events["timestamp"].quantile(cutoff, interpolation="nearest")
    if isinstance(cutoff, str):
        try:
            cutoff = datetime.fromisoformat(cutoff)
        except ValueError:
            raise ConfigError(f"cutoff {cutoff!r} is not an ISO-8601 time") from None
    if isinstance(cutoff, datetime):
        return cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=timezone.utc)
    raise ConfigError("cutoff must be a datetime, an ISO-8601 string or a quantile in (0, 1)")


def temporal_split(events: pl.DataFrame, cutoff) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Global temporal split: events before ``cutoff`` train, the rest test.

    ``cutoff`` is a datetime, an ISO-8601 string (UTC when naive), or a float in (0, 1):
    the quantile of event times (``0.8`` puts the latest 20% of events in test).

    Example:
        >>> import polars as pl
        >>> from datetime import datetime, timezone
        >>> ev = pl.DataFrame({"timestamp": [datetime(2024, 1, d, tzinfo=timezone.utc) for d in (1, 2, 3)]})
        >>> [len(x) for x in temporal_split(ev, "2024-01-02")]
        [1, 2]
    """
    if "timestamp" not in events.columns:
        raise DataError("missing required column", column="timestamp")
    at = _to_datetime(cutoff, events)
    before = pl.col("timestamp") < pl.lit(at).cast(events.schema["timestamp"])
    return events.filter(before), events.filter(~before)


_GAP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*$")
_UNIT = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _gap(gap) -> timedelta:
    if isinstance(gap, timedelta):
        return gap
    m = _GAP.match(str(gap))
    if not m:
        raise ConfigError(f"gap {gap!r}: use e.g. '30m', '90s', '2h' or a timedelta")
    return timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])


def sessionize(events: pl.DataFrame, gap="30m") -> pl.DataFrame:
    """Add ``session_id`` where it is missing: a user's session ends after ``gap`` of
    inactivity. Ids are ``"<user_id>:<n>"`` with ``n`` counting the user's sessions from 0.
    Rows that already have a session id keep it. The result is sorted by user and time.

    Example:
        >>> import polars as pl
        >>> from datetime import datetime, timezone
        >>> t = [datetime(2024, 1, 1, 10, m, tzinfo=timezone.utc) for m in (0, 20, 55)]
        >>> ev = pl.DataFrame({"user_id": ["u"] * 3, "item_id": ["a"] * 3, "timestamp": t})
        >>> sessionize(ev)["session_id"].to_list()
        ['u:0', 'u:0', 'u:1']
    """
    if "user_id" in events.columns and events["user_id"].null_count():
        row = int(events["user_id"].is_null().arg_max())
        raise DataError("user_id is missing", row=row + 1, column="user_id")
    df, _ = _sorted_events(events, "user_id")
    step = _gap(gap)
    new = (
        (pl.col("_g") != pl.col("_g").shift(1))
        | ((pl.col("timestamp") - pl.col("timestamp").shift(1)) > step)
    ).fill_null(True)
    df = df.with_columns(_n=new.cast(pl.Int64).cum_sum())
    # Per-user numbering: subtract the running count at the user's first event.
    number = pl.col("_n") - pl.col("_n").first().over("_g")
    made = pl.col("user_id").cast(pl.Utf8) + pl.lit(":") + number.cast(pl.Utf8)
    if "session_id" in df.columns:
        made = pl.coalesce(pl.col("session_id").cast(pl.Utf8), made)
    return df.with_columns(session_id=made).drop("_n", "_g")
