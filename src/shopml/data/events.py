"""The canonical event schema and :func:`read_events`, the one way data enters shopml.

Canonical columns (``EVENT_SCHEMA``):

===============  ========================  ==============================================
column           dtype                     meaning
===============  ========================  ==============================================
user_id          Utf8                      pseudonym (HMAC-SHA256, 32 hex) of the user
item_id          Utf8                      item id as given
timestamp        Datetime("us", "UTC")     when the event happened
event_type       Utf8                      ``view``, ``cart`` or ``purchase``
session_id       Utf8 (optional)           session id
price            Float64 (optional)        unit price, never negative
quantity         Float64 (optional)        units
category         Utf8 (optional)           item category
===============  ========================  ==============================================

Rows are sorted by (user_id, timestamp); ties keep file order. Other columns are dropped.

Timestamps may be ISO-8601 strings (``2024-05-01``, ``2024-05-01 10:00``,
``2024-05-01T10:00:00.5Z``, ``...+02:00``; naive times are taken as UTC), unix epochs, or
typed Parquet dates/datetimes. The unit of an epoch column is read from its magnitude,
once per file, by its largest absolute value: below 1e11 seconds, below 1e14
milliseconds, below 1e17 microseconds, else nanoseconds (1e11 s is the year 5138 and 1e11
ms is 1973, so real logs are never ambiguous).

Event names are matched case-insensitively through ``DEFAULT_EVENT_MAP`` (pv, click(s),
fav -> view; add_to_cart, cart(s) -> cart; buy, order(s), transaction -> purchase, ...);
``event_map`` adds or overrides names, and mapping a name to ``None`` drops those events.

Example:
    >>> import polars as pl, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "e.csv")
    >>> _ = open(p, "w").write("user,item,ts,action\\nu1,i1,1700000000,pv\\nu1,i2,1700000060,buy\\n")
    >>> df = read_events(p, column_map={"user": "user_id", "item": "item_id",
    ...                                  "ts": "timestamp", "action": "event_type"}, pseudonymize=False)
    >>> df["event_type"].to_list(), df.schema["timestamp"]
    (['view', 'purchase'], Datetime(time_unit='us', time_zone='UTC'))
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shopml import privacy
from shopml.data.raw import read_raw
from shopml.data.validate import (
    EVENT_TYPES,
    REQUIRED,
    Source,
    check_canonical,
    check_columns,
    first_true,
    locate_bad_field_count,
    order_and_warn,
)
from shopml.errors import ConfigError, DataError

__all__ = ["EVENT_SCHEMA", "EVENT_TYPES", "DEFAULT_EVENT_MAP", "read_events", "load_events", "map_event_types"]

EVENT_SCHEMA = {
    "user_id": pl.String,
    "item_id": pl.String,
    "timestamp": pl.Datetime("us", "UTC"),
    "event_type": pl.String,
    "session_id": pl.String,
    "price": pl.Float64,
    "quantity": pl.Float64,
    "category": pl.String,
}
_IDS = ("user_id", "item_id", "session_id", "category")
_NUMBERS = ("price", "quantity")

DEFAULT_EVENT_MAP = {
    **dict.fromkeys(["view", "views", "pv", "click", "clicks", "page_view", "pageview", "detail",
                     "product_view", "view_item", "fav", "favorite", "favourite"], "view"),
    **dict.fromkeys(["cart", "carts", "add_to_cart", "addtocart", "add-to-cart", "add to cart",
                     "basket", "add_to_basket", "cart_add"], "cart"),
    **dict.fromkeys(["purchase", "purchases", "buy", "buys", "order", "orders", "transaction",
                     "transactions", "checkout", "sale", "sold"], "purchase"),
}


def read_events(path, *, format: str = "events", column_map: dict | None = None,
                event_map: dict | None = None, pseudonymize: bool = True) -> pl.DataFrame:
    """Read, validate, pseudonymize and sort an event file into the canonical schema.

    ``format`` is ``events`` (CSV/Parquet/JSONL by suffix), ``taobao``, ``otto``,
    ``yoochoose-clicks`` or ``diginetica-views`` (see :mod:`shopml.data.raw`).
    ``column_map`` renames foreign columns ``{"theirs": "user_id", ...}``. Bad data raises
    :class:`~shopml.errors.DataError` naming file, line and column; warnings are dropped
    here, use :func:`load_events` to get them.

    Example:
        >>> df = read_events("events.parquet")  # doctest: +SKIP
    """
    return load_events(path, format=format, column_map=column_map, event_map=event_map,
                       pseudonymize=pseudonymize)[0]


def load_events(path, *, format: str = "events", column_map: dict | None = None,
                event_map: dict | None = None, pseudonymize: bool = True) -> tuple[pl.DataFrame, list[dict]]:
    """Like :func:`read_events`, also returning the validation warnings (file order).

    Example:
        >>> df, warnings = load_events("events.csv")  # doctest: +SKIP
    """
    table = read_raw(path, format)
    df, source = table.df, table.source
    table.df = None  # the frame below is the only reference: memory is freed step by step
    if column_map:
        df = _apply_column_map(df, column_map)
    check_columns(df.columns, source)
    df, source, blank = _drop_blank_rows(df, source)
    if table.csv_fields and df.select(pl.any_horizontal(pl.all().is_null()).any()).item():
        err = locate_bad_field_count(Path(path), *table.csv_fields)  # nulls may be a cut line
        if err is not None:
            raise err
    df = _to_canonical_types(df, source, text=table.csv_fields is not None)
    df, source = map_event_types(df, source, {**table.event_map, **(event_map or {})})
    check_canonical(df, source)
    names, codes = _user_codes(df["user_id"], pseudonymize)
    perm, warnings = order_and_warn(df, codes, source)
    if blank:
        warnings.insert(0, {"kind": "blank_lines", "count": blank, "first_row": None,
                            "message": f"{blank} blank lines were skipped"})
    # Gather column by column, dropping each source column at once: peak memory stays
    # near one copy of the log instead of two.
    out = {"user_id": names.gather(codes.gather(perm))}
    del codes
    for col in [c for c in EVENT_SCHEMA if c in df.columns and c != "user_id"]:
        out[col] = df.get_column(col).gather(perm)
        df = df.drop(col)
    del df
    out = pl.DataFrame(out)
    if pseudonymize:
        out = _hash_columns(out, [c for c in table.hashed if c in out.columns and c != "user_id"])
    return out.cast({c: EVENT_SCHEMA[c] for c in out.columns}), warnings


def _apply_column_map(df: pl.DataFrame, column_map: dict) -> pl.DataFrame:
    bad = [v for v in column_map.values() if v not in EVENT_SCHEMA]
    if bad:
        raise ConfigError(f"column_map targets must be canonical columns ({', '.join(EVENT_SCHEMA)}), got {bad}")
    renames = {k: v for k, v in column_map.items() if k in df.columns and k != v}
    clashes = [v for v in renames.values() if v in df.columns and v not in renames]
    return df.drop(clashes).rename(renames)


def _with_lines(df: pl.DataFrame, source: Source) -> tuple[pl.DataFrame, Source]:
    """Materialize each row's line before rows are dropped, so later errors still point
    at the right line."""
    if source.line_col is not None and source.line_col in df.columns:
        return df, source
    df = df.with_row_index("_line", offset=source.first_line)
    return df, Source(source.path, source.first_line, "_line")


def _drop_blank_rows(df, source):
    data_cols = [c for c in df.columns if c != "_line"]
    blank = pl.all_horizontal(pl.col(data_cols).is_null())
    n_blank = int(df.select(blank.sum()).item())
    if not n_blank:
        return df, source, 0
    df, source = _with_lines(df, source)
    df = df.filter(~blank)
    if df.height == 0:
        raise DataError("no events, only blank lines", path=source.path, row=source.first_line)
    return df, source, n_blank


def _to_canonical_types(df: pl.DataFrame, source: Source, text: bool = False) -> pl.DataFrame:
    keep = [c for c in EVENT_SCHEMA if c in df.columns] + (["_line"] if "_line" in df.columns else [])
    df = df.select(keep)
    casts = []
    for col in (c for c in _IDS if c in df.columns):
        s = pl.col(col)
        if df.schema[col] == pl.String:
            if text and df.select(s.str.contains(r"^\s|\s$").any()).item():  # copy only if padded
                casts.append(s.str.strip_chars())
        elif df.schema[col].is_float():  # ids stored as floats (1.0) read back as "1"
            casts.append(s.cast(pl.Int64, strict=False).cast(pl.String))
        else:
            casts.append(s.cast(pl.String))
    for col in (c for c in _NUMBERS if c in df.columns):
        casts.append(_parse_number(df, col, source))
    if df.schema["event_type"] != pl.String:
        casts.append(pl.col("event_type").cast(pl.String))
    df = df.with_columns(casts) if casts else df
    return df.with_columns(_parse_timestamp(df, source))


def _parse_number(df, col, source) -> pl.Expr:
    dtype = df.schema[col]
    if dtype.is_numeric():
        return pl.col(col).cast(pl.Float64)
    parsed = pl.col(col).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    idx = first_true(df, parsed.is_null() & pl.col(col).is_not_null())
    if idx is not None:
        raise source.error(df, idx, col, f"unparsable number {df[col][idx]!r}")
    return parsed.alias(col)


def _parse_timestamp(df: pl.DataFrame, source: Source) -> pl.Series:
    s = df["timestamp"]
    if isinstance(s.dtype, pl.Datetime):
        s = s.dt.convert_time_zone("UTC") if s.dtype.time_zone else s.dt.replace_time_zone("UTC")
        return s.dt.cast_time_unit("us")
    if s.dtype == pl.Date:
        return s.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if s.dtype.is_numeric():
        return _from_epoch(s)
    if s.dtype != pl.String:
        raise DataError(f"unsupported timestamp type {s.dtype}", path=source.path, column="timestamp")
    text = s.str.strip_chars()
    sample = text.drop_nulls().head(1)
    numeric = sample.len() > 0 and sample.cast(pl.Float64, strict=False).is_not_null().all()
    parsed = _from_epoch(text.cast(pl.Float64, strict=False)) if numeric else _from_iso(text)
    idx = first_true(df, parsed.is_null() & s.is_not_null())
    if idx is not None:
        what = "unix time" if numeric else "ISO-8601 time"
        raise source.error(df, idx, "timestamp", f"unparsable timestamp {s[idx]!r} (expected {what})")
    return parsed.alias("timestamp")


def _from_epoch(s: pl.Series) -> pl.Series:
    """Epoch numbers -> UTC datetimes; the unit comes from the largest magnitude."""
    top = s.abs().max()
    top = 0 if top is None else top
    per_us = 1e-6 if top < 1e11 else 1e-3 if top < 1e14 else 1.0 if top < 1e17 else 1e3
    if s.dtype.is_integer():
        us = s.cast(pl.Int64) * int(1 / per_us) if per_us < 1 else s.cast(pl.Int64) // int(per_us)
    else:
        us = (s / per_us).round().cast(pl.Int64, strict=False)
    return us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("timestamp")


def _from_iso(text: pl.Series) -> pl.Series:
    """ISO-8601 strings -> UTC datetimes. Polars infers one format from the data; rows it
    cannot read (mixed formats) get a second pass over the accepted variants."""
    def utc(x: pl.Series) -> pl.Series:
        return x.dt.convert_time_zone("UTC") if x.dtype.time_zone else x.dt.replace_time_zone("UTC")

    try:
        first = utc(text.str.to_datetime(strict=False, time_unit="us"))
    except pl.exceptions.PolarsError:
        first = pl.Series("timestamp", [None] * text.len(), dtype=pl.Datetime("us", "UTC"))
    if first.null_count() == text.null_count():
        return first
    t = text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
    variants = [first, utc(t.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us"))]
    for fmt in ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        variants.append(utc(t.str.to_datetime(fmt, strict=False, time_unit="us")))
    return pl.select(pl.coalesce(variants)).to_series()


def map_event_types(df: pl.DataFrame, source: Source, event_map: dict) -> tuple[pl.DataFrame, Source]:
    """Map raw event names to view/cart/purchase (``event_map`` first, case-sensitive,
    then ``DEFAULT_EVENT_MAP`` on the lower-cased name). Only distinct names are looked up.
    Names mapped to None are dropped; an unmapped name raises DataError at its first row.

    Example:
        >>> df = pl.DataFrame({"event_type": ["pv", "Buy", "fav"]})
        >>> map_event_types(df, Source(), {"fav": None})[0]["event_type"].to_list()
        ['view', 'purchase']
    """
    bad_targets = {k: v for k, v in event_map.items() if v is not None and v not in EVENT_TYPES}
    if bad_targets:
        raise ConfigError(f"event_map values must be one of {', '.join(EVENT_TYPES)} or None, got {bad_targets}")
    lowered = {str(k).strip().lower(): v for k, v in event_map.items()}
    names = df["event_type"].unique().drop_nulls().to_list()
    target, unknown = {}, []
    for name in names:
        key = name.strip().lower()
        for table in (event_map, lowered, DEFAULT_EVENT_MAP):
            if name in table or key in table:
                target[name] = table.get(name, table.get(key))
                break
        else:
            unknown.append(name)
    if unknown:
        idx = first_true(df, pl.col("event_type").is_in(unknown))
        raise source.error(df, idx, "event_type", f"unknown event type {df['event_type'][idx]!r}; "
                           f"map it with event_map / --event-map NAME=view|cart|purchase")
    if all(k == v for k, v in target.items()):
        return df, source  # already canonical: no need to copy the column
    mapped = pl.col("event_type").replace_strict(list(target), list(target.values()), return_dtype=pl.String)
    df = df.with_columns(mapped)
    if any(v is None for v in target.values()):
        df, source = _with_lines(df, source)
        df = df.filter(pl.col("event_type").is_not_null())
        if df.height == 0:
            raise DataError("no events left: event_map drops every event type", path=source.path)
    return df, source


def _user_codes(users: pl.Series, pseudonymize: bool) -> tuple[pl.Series, pl.Series]:
    """Pseudonyms of the distinct users in sorted order, and each row's index into them.

    Each distinct id is hashed once; rows carry a small integer code, which sorts much
    faster than 32-character strings and is only turned into the pseudonym at the end.
    """
    uniq = users.unique()
    names = privacy.pseudonymize(uniq.to_list()) if pseudonymize else uniq.to_list()
    ids = pl.DataFrame({"user_id": uniq, "_name": pl.Series(names, dtype=pl.String)})
    ids = ids.sort("_name").with_row_index("_code")
    codes = users.to_frame("user_id").join(ids.select("user_id", "_code"), on="user_id", how="left",
                                          maintain_order="left")["_code"]
    return ids["_name"], codes


def _hash_columns(df: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    for col in cols:
        uniq = df[col].unique().drop_nulls()
        df = df.with_columns(pl.col(col).replace_strict(uniq, privacy.pseudonymize(uniq.to_list()), default=None))
    return df
