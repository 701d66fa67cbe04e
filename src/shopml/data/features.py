"""Item side features: categorical tokens per item, read from a side file or the event log.

Every feature becomes a *token* ``"field=value"`` (a category, a brand, an attribute id, a price
bucket), and an item is the bag of its tokens. Models embed the tokens and add their mean to
the item's id embedding, so an item with no interactions still has a vector: the cold-start
path (:mod:`shopml.recommend.nets`).

Accepted sources:

* JSON ``{item_id: [token, ...]}`` (``Beauty_item2attributes.json``) or
  ``{item_id: {field: value or [values]}}``;
* Parquet or CSV with an ``item_id`` column; every other column is a field. Text columns are
  categorical; numeric columns (price) are cut into ``n_buckets`` quantile buckets, since a
  raw price is no token and its scale says nothing to an embedding;
* the event log itself (:meth:`ItemFeatures.from_events`): ``category``, the item's latest
  positive price, bucketed, and the words of its ``description`` (a product name such as
  "WHITE HANGING HEART T-LIGHT HOLDER" gives ``word=HEART``, ``word=HOLDER``, ...). A word
  only one item has is dropped: it says nothing the item's id does not.

Example:
    >>> f = ItemFeatures.from_mapping({"a": ["1", "2"], "b": ["2"]})
    >>> f.tokens_of("a")
    ['attr=1', 'attr=2']
    >>> offsets, tokens = f.encode(["b", "a", "zzz"])
    >>> offsets.tolist(), tokens.tolist()
    ([0, 0, 1, 3, 3], [2, 1, 2])
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from shopml.errors import DataError

__all__ = ["ItemFeatures", "read_item_features"]


class ItemFeatures:
    """Items' token bags. Token index 0 is reserved (no token); :meth:`encode` gives CSR
    ``(offsets, tokens)`` for a list of item ids, with row 0 (padding) and unknown items empty."""

    def __init__(self, item_tokens: dict[str, list[str]], vocabulary: list[str] | None = None):
        self.item_tokens = {str(k): list(dict.fromkeys(v)) for k, v in item_tokens.items()}
        if vocabulary is None:
            vocabulary = sorted({t for v in self.item_tokens.values() for t in v})
        self.vocabulary = list(vocabulary)
        self._index = {t: n + 1 for n, t in enumerate(self.vocabulary)}

    @property
    def n_tokens(self) -> int:
        return len(self.vocabulary)

    def __len__(self) -> int:
        return len(self.item_tokens)

    def tokens_of(self, item_id) -> list[str]:
        return self.item_tokens.get(str(item_id), [])

    @classmethod
    def from_mapping(cls, mapping: dict, field: str = "attr") -> "ItemFeatures":
        """``{item: [values]}`` (tokens ``field=value``) or ``{item: {field: value(s)}}``."""
        out = {}
        for item, v in mapping.items():
            if isinstance(v, dict):
                toks = [f"{f}={x}" for f, vals in v.items() for x in (vals if isinstance(vals, list) else [vals])
                        if x is not None]
            elif isinstance(v, list):
                toks = [f"{field}={x}" for x in v]
            else:
                toks = [f"{field}={v}"]
            out[str(item)] = toks
        return cls(out)

    @classmethod
    def from_frame(cls, df: pl.DataFrame, item_col: str = "item_id", n_buckets: int = 8) -> "ItemFeatures":
        """One row per item; text columns are categorical, numeric ones quantile-bucketed."""
        if item_col not in df.columns:
            raise DataError(f"item features need an {item_col!r} column; found {', '.join(df.columns)}",
                            column=item_col)
        df = df.unique(item_col, keep="last", maintain_order=True)
        cols = {}
        for c in df.columns:
            if c == item_col:
                continue
            s = df[c]
            if s.dtype.is_numeric() and not s.dtype == pl.Boolean:
                cols[c] = _buckets(s.cast(pl.Float64).to_numpy(), n_buckets)
            else:
                cols[c] = [None if x is None or x == "" else str(x) for x in s.cast(pl.Utf8).to_list()]
        items = df[item_col].cast(pl.Utf8).to_list()
        tokens = {it: [f"{c}={vals[n]}" for c, vals in cols.items() if vals[n] is not None] for n, it in enumerate(items)}
        return cls(tokens)

    @classmethod
    def from_events(cls, events: pl.DataFrame, n_buckets: int = 8, min_items: int = 2) -> "ItemFeatures | None":
        """``category``, the latest positive ``price`` and the ``description`` words of each
        item in an event log (None when the log has none of them). A description word must be
        shared by ``min_items`` items to count.

        Example:
            >>> ev = pl.DataFrame({"item_id": ["a", "b", "c"],
            ...                    "description": ["RED HEART BOX", "PINK HEART", "RED MUG"]})
            >>> ItemFeatures.from_events(ev).tokens_of("a")
            ['word=HEART', 'word=RED']
        """
        keep = [c for c in ("category", "price", "description") if c in events.columns]
        if not keep:
            return None
        ev = events
        if "price" in keep:
            ev = ev.with_columns(pl.when(pl.col("price") > 0).then(pl.col("price")).otherwise(None))
        df = (ev.sort("timestamp") if "timestamp" in ev.columns else ev).group_by("item_id", maintain_order=True).agg(
            [pl.col(c).drop_nulls().last() for c in keep])
        words = None
        if "description" in keep:
            words = _words(df["item_id"].cast(pl.Utf8).to_list(), df["description"].to_list(), min_items)
            df = df.drop("description")
        base = cls.from_frame(df, n_buckets=n_buckets).item_tokens if df.width > 1 else {}
        if words is not None:
            base = {i: base.get(i, []) + words.get(i, []) for i in set(base) | set(words)}
        return cls(base)

    def encode(self, item_ids) -> tuple[np.ndarray, np.ndarray]:
        """CSR ``(offsets [n + 2], tokens)`` for rows 0 (padding, empty) and ``item_ids``;
        unknown tokens and items are empty."""
        rows = [[]] + [[self._index[t] for t in self.tokens_of(i) if t in self._index] for i in item_ids]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(r) for r in rows])
        tokens = np.fromiter((t for r in rows for t in r), dtype=np.int64, count=int(offsets[-1]))
        return offsets, tokens

    def coverage(self, item_ids) -> float:
        """Share of ``item_ids`` with at least one known token."""
        ids = list(item_ids)
        return sum(1 for i in ids if any(t in self._index for t in self.tokens_of(i))) / max(len(ids), 1)


def _words(items: list[str], texts: list, min_items: int) -> dict[str, list[str]]:
    """``word=W`` tokens of each item's description (letters, digits and inner hyphens,
    upper-cased, 3+ characters), keeping words that ``min_items`` items share."""
    import re
    from collections import Counter

    split = {i: sorted(set(re.findall(r"[A-Z0-9][A-Z0-9-]*[A-Z0-9]", str(t).upper()))) if t else []
             for i, t in zip(items, texts)}
    split = {i: [w for w in ws if len(w) >= 3 and not w.isdigit()] for i, ws in split.items()}
    df = Counter(w for ws in split.values() for w in ws)
    return {i: [f"word={w}" for w in ws if df[w] >= min_items] for i, ws in split.items()}


def _buckets(x: np.ndarray, n: int) -> list[str | None]:
    """Quantile bucket labels ``q0..q{n-1}`` of positive finite values (None otherwise)."""
    ok = np.isfinite(x) & (x > 0)
    out: list[str | None] = [None] * len(x)
    if not ok.any():
        return out
    edges = np.unique(np.quantile(x[ok], np.linspace(0, 1, n + 1)[1:-1]))
    for i in np.flatnonzero(ok):
        out[i] = f"q{int(np.searchsorted(edges, x[i], side='right'))}"
    return out


def read_item_features(path: str | Path, n_buckets: int = 8) -> ItemFeatures:
    """Item features from a JSON, Parquet or CSV side file (see the module docstring).

    Example:
        >>> read_item_features("missing.json")
        Traceback (most recent call last):
        ...
        shopml.errors.DataError: missing.json: item features file not found
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("item features file not found", path=path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise DataError("item features JSON must be an object {item_id: [tokens] or {field: value}}",
                                path=path)
            return ItemFeatures.from_mapping(data)
        if suffix == ".parquet":
            return ItemFeatures.from_frame(pl.read_parquet(path), n_buckets=n_buckets)
        if suffix == ".csv":
            return ItemFeatures.from_frame(pl.read_csv(path, infer_schema_length=10000), n_buckets=n_buckets)
    except (json.JSONDecodeError, pl.exceptions.PolarsError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read item features: {str(e).splitlines()[0]}", path=path) from None
    except DataError as e:
        if e.path is None:  # a frame-level problem: name the file
            raise DataError(e.reason, path=path, column=e.column) from None
        raise
    raise DataError(f"item features must be .json, .parquet or .csv, got {suffix or 'no suffix'!r}", path=path)
