"""The canonical event schema and :func:`read_events`, the one way data enters shopml.

Canonical columns (``EVENT_SCHEMA``):

===============  ========================  ==============================================
column           dtype                     meaning
===============  ========================  ==============================================
user_id          Utf8                      pseudonym (HMAC-SHA256, 32 hex) of the user
item_id          Utf8                      item id as given
timestamp        Datetime("us", "UTC")     when the event happened, in [1990-01-01, now + 1 day]
event_type       Utf8                      ``view``, ``cart``, ``purchase`` or ``return``
session_id       Utf8 (optional)           session id (basket / invoice for transaction logs)
price            Float64 (optional)        unit price, > 0 and finite
quantity         Float64 (optional)        units; <= 0 on returns, never 0 otherwise
category         Utf8 (optional)           item category
description      Utf8 (optional)           item name or description; its words become item
                                           features (:mod:`shopml.data.features`)
guest            Boolean (optional)        True on guest lines kept as their session's user
===============  ========================  ==============================================

Rows are sorted by (user_id, timestamp); ties keep file order. Other columns are dropped.
``guest`` is present only when guest lines were kept (``missing_user="session"``);
user-level jobs should drop ``guest`` rows. ``return`` rows are the only ones with
``quantity < 0``; jobs that learn from purchases should filter them out.

Keyword arguments of :func:`load_events` / :func:`read_events` (named defaults):

==================  ===========  ==========================================================
argument            default      meaning
==================  ===========  ==========================================================
format              ``events``   reader (:mod:`shopml.data.raw`): events, taobao, otto, ...
column_map          None         ``{"theirs": "user_id", ...}``; two columns onto one
                                 canonical column is a ConfigError
event_map           None         extra event names -> view/cart/purchase/return/None (drop)
pseudonymize        True         hash user ids (and session-as-user ids) with the shop key
event_type          None         constant event type for logs without one (``purchase``
                                 for transaction logs); an error if one is also mapped
timestamp_format    None         strftime format; None reads the shapes listed in
                                 :mod:`shopml.data.timestamps`
missing_user        None         guests: ``session`` / ``drop`` / ``error``; None is
                                 ``session`` with a session_id column, else ``drop``
bad_prices          ``drop``     0 / negative / inf / NaN prices: ``drop`` or ``error``
exclude_items       None         raw item ids (list, or a text file) to drop, e.g. fees
table, query        None         for a ``postgresql://`` path (:mod:`shopml.data.inputs`)
==================  ===========  ==========================================================

``path`` is a file, a folder or glob of files (CSV/Parquet/JSONL, optionally .gz/.zst,
read in sorted name order), a list of these, or a ``postgresql://`` URI.

Event names are matched case-insensitively through ``DEFAULT_EVENT_MAP`` (pv, click(s),
fav -> view; add_to_cart, cart(s) -> cart; buy, order(s), transaction -> purchase; return,
refund, cancel(led), cancellation -> return, ...); ``event_map`` adds or overrides names,
and mapping a name to ``None`` drops those events (counted as ``dropped_events``).
``remove_from_cart`` (REES46 / Open CDP) is dropped by default: taking an item out of the
cart returns nothing that was bought, so counting it as a ``return`` would net units
against purchases that never happened. The cleaning rules (guests, returns, bad prices,
excluded items) are in :mod:`shopml.data.cleaning`; each is counted in a warning.

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

import polars as pl

from shopml import privacy
from shopml.data.cleaning import check_policies, clean_events
from shopml.data.raw import read_raw
from shopml.data.timestamps import parse_timestamp
from shopml.data.validate import (
    EVENT_TYPES,
    Source,
    check_canonical,
    check_columns,
    first_true,
    order_and_warn,
    warning_at,
    with_lines,
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
    "description": pl.String,
    "guest": pl.Boolean,
}
_IDS = ("user_id", "item_id", "session_id", "category", "description")
_NUMBERS = ("price", "quantity")
_INTERNAL = ("_line", "_file")

DEFAULT_EVENT_MAP = {
    **dict.fromkeys(["view", "views", "pv", "click", "clicks", "page_view", "pageview", "detail",
                     "product_view", "view_item", "fav", "favorite", "favourite"], "view"),
    **dict.fromkeys(["cart", "carts", "add_to_cart", "addtocart", "add-to-cart", "add to cart",
                     "basket", "add_to_basket", "cart_add"], "cart"),
    **dict.fromkeys(["purchase", "purchases", "buy", "buys", "order", "orders", "transaction",
                     "transactions", "checkout", "sale", "sold"], "purchase"),
    **dict.fromkeys(["return", "returns", "returned", "refund", "refunds", "refunded", "cancel",
                     "cancelled", "canceled", "cancellation", "cancellations"], "return"),
    "remove_from_cart": None,
}


def read_events(path, *, format: str = "events", column_map: dict | None = None,
                event_map: dict | None = None, pseudonymize: bool = True, **options) -> pl.DataFrame:
    """Read, validate, clean, pseudonymize and sort an event log into the canonical schema.

    ``format`` is ``events`` (CSV/Parquet/JSONL by suffix), ``taobao``, ``otto``,
    ``yoochoose-clicks`` or ``diginetica-views`` (see :mod:`shopml.data.raw`).
    ``column_map`` renames foreign columns ``{"theirs": "user_id", ...}``; ``options`` are
    the other keyword arguments of :func:`load_events` (module docstring). Bad data raises
    :class:`~shopml.errors.DataError` naming file, line and column; warnings are dropped
    here, use :func:`load_events` to get them.

    Example:
        >>> df = read_events("events.parquet")  # doctest: +SKIP
    """
    return load_events(path, format=format, column_map=column_map, event_map=event_map,
                       pseudonymize=pseudonymize, **options)[0]


def load_events(path, *, format: str = "events", column_map: dict | None = None,
                event_map: dict | None = None, pseudonymize: bool = True, event_type: str | None = None,
                timestamp_format: str | None = None, missing_user: str | None = None,
                bad_prices: str = "drop", exclude_items=None, table: str | None = None,
                query: str | None = None) -> tuple[pl.DataFrame, list[dict]]:
    """Like :func:`read_events`, also returning the warnings (cleaning first, then validation).

    Example:
        >>> df, warnings = load_events("by-day/", event_type="purchase",  # doctest: +SKIP
        ...     column_map={"InvoiceDate": "timestamp", "CustomerID": "user_id", "StockCode": "item_id",
        ...                 "UnitPrice": "price", "Quantity": "quantity", "InvoiceNo": "session_id"})
    """
    check_policies(missing_user, bad_prices)
    raw = read_raw(path, format, table=table, query=query)
    df, source = raw.df, raw.source
    raw.df = None  # the frame below is the only reference: memory is freed step by step
    if column_map:
        df = _apply_column_map(df, column_map)
    if event_type is not None:
        df = _constant_event_type(df, event_type, column_map or {}, event_map or {})
    check_columns(df.columns, source)
    df, source, blank = _drop_blank_rows(df, source)
    df, warnings = _to_canonical_types(df, source, text=raw.csv_fields is not None, fmt=timestamp_format)
    n = df.height
    df, source = map_event_types(df, source, {**raw.event_map, **(event_map or {})})
    if df.height < n:
        warnings.append(warning_at("dropped_events", n - df.height, f"{n - df.height:,} events of types "
                                   "mapped to None (event_map) dropped", None, None, source))
    df, source, cleaned = clean_events(df, source, missing_user=missing_user, bad_prices=bad_prices,
                                       exclude_items=exclude_items)
    check_canonical(df, source)
    names, codes = _user_codes(df["user_id"], pseudonymize)
    perm, checks = order_and_warn(df, codes, source)
    if blank:
        warnings.insert(0, {"kind": "blank_lines", "count": blank, "first_row": None,
                            "message": f"{blank} blank lines were skipped"})
    warnings += cleaned + checks
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
        out = _hash_columns(out, [c for c in raw.hashed if c in out.columns and c != "user_id"])
    return out.cast({c: EVENT_SCHEMA[c] for c in out.columns}), warnings


def _apply_column_map(df: pl.DataFrame, column_map: dict) -> pl.DataFrame:
    bad = [v for v in column_map.values() if v not in EVENT_SCHEMA]
    if bad:
        raise ConfigError(f"column_map targets must be canonical columns ({', '.join(EVENT_SCHEMA)}), got {bad}")
    renames = {k: v for k, v in column_map.items() if k in df.columns and k != v}
    sources: dict[str, list[str]] = {}
    for k, v in renames.items():
        sources.setdefault(v, []).append(k)
    for target, cols in sources.items():
        if target in df.columns and target not in renames:  # the file already has it, kept
            cols = [target, *cols]
        if len(cols) > 1:
            raise ConfigError(f"columns {' and '.join(map(repr, cols))} both map onto canonical column "
                              f"{target!r}; map only one (or rename the other away)")
    return df.rename(renames)


def _constant_event_type(df: pl.DataFrame, name: str, column_map: dict, event_map: dict) -> pl.DataFrame:
    if "event_type" in df.columns:
        theirs = [k for k, v in column_map.items() if v == "event_type" and k != "event_type"]
        col = repr(theirs[0]) if theirs else "'event_type'"
        raise ConfigError(f"event_type={name!r} is for logs without an event type, but column {col} "
                          "is one; drop event_type= or the column mapping")
    key = str(name).strip().lower()
    if name not in EVENT_TYPES and name not in event_map and key not in DEFAULT_EVENT_MAP:
        raise ConfigError(f"event_type must be one of {', '.join(EVENT_TYPES)} (or a mapped name), got {name!r}")
    return df.with_columns(pl.lit(str(name), dtype=pl.String).alias("event_type"))


def _drop_blank_rows(df, source):
    data_cols = [c for c in df.columns if c not in _INTERNAL]
    blank = pl.all_horizontal(pl.col(data_cols).is_null())
    n_blank = int(df.select(blank.sum()).item())
    if not n_blank:
        return df, source, 0
    df, source = with_lines(df, source)
    df = df.filter(~blank)
    if df.height == 0:
        raise DataError("no events, only blank lines", path=source.path, row=source.first_line)
    return df, source, n_blank


def _to_canonical_types(df: pl.DataFrame, source: Source, text: bool = False,
                        fmt: str | None = None) -> tuple[pl.DataFrame, list[dict]]:
    keep = [c for c in EVENT_SCHEMA if c in df.columns] + [c for c in _INTERNAL if c in df.columns]
    df = df.select(keep)
    casts = []
    for col in (c for c in _IDS if c in df.columns):
        s = pl.col(col)
        if df.schema[col] == pl.String:
            changed = False
            if text and df.select(s.str.contains(r"^\s|\s$").any()).item():  # copy only if padded
                s, changed = s.str.strip_chars(), True
            if col == "user_id" and df.select(pl.col(col).str.contains(r"\.0+\s*$").any()).item():
                # customer ids exported as floats ("17850.0": pandas turns an id column with
                # guest gaps into floats) read as the integers they are, like typed floats below
                s, changed = s.str.replace(r"^(-?\d+)\.0+$", "${1}"), True
            if changed:
                casts.append(s.alias(col))
        elif df.schema[col].is_float():  # ids stored as floats (1.0) read back as "1"
            casts.append(s.cast(pl.Int64, strict=False).cast(pl.String))
        else:
            casts.append(s.cast(pl.String))
    for col in (c for c in _NUMBERS if c in df.columns):
        casts.append(_parse_number(df, col, source))
    if df.schema["event_type"] != pl.String:
        casts.append(pl.col("event_type").cast(pl.String))
    if "guest" in df.columns:
        casts.append(_parse_bool(df, "guest", source))
    df = df.with_columns(casts) if casts else df
    ts, warnings = parse_timestamp(df, source, fmt)
    return df.with_columns(ts), warnings


def _parse_number(df, col, source) -> pl.Expr:
    dtype = df.schema[col]
    if dtype.is_numeric():
        return pl.col(col).cast(pl.Float64)
    if dtype != pl.String:
        raise DataError(f"expected numbers, got {dtype}", path=source.path, column=col)
    parsed = pl.col(col).str.strip_chars().cast(pl.Float64, strict=False)
    idx = first_true(df, parsed.is_null() & pl.col(col).is_not_null() & (pl.col(col).str.strip_chars() != ""))
    if idx is not None:
        raise source.error(df, idx, col, f"unparsable number {df[col][idx]!r}")
    return parsed.alias(col)


def _parse_bool(df, col, source) -> pl.Expr:
    if df.schema[col] == pl.Boolean:
        return pl.col(col)
    text = pl.col(col).cast(pl.String).str.strip_chars().str.to_lowercase()
    parsed = pl.when(text.is_in(["true", "1", "yes", "t"])).then(True).when(
        text.is_in(["false", "0", "no", "f", ""])).then(False)
    idx = first_true(df, parsed.is_null() & pl.col(col).is_not_null())
    if idx is not None:
        raise source.error(df, idx, col, f"expected true/false, got {df[col][idx]!r}")
    return parsed.alias(col)


def map_event_types(df: pl.DataFrame, source: Source, event_map: dict) -> tuple[pl.DataFrame, Source]:
    """Map raw event names to view/cart/purchase/return (``event_map`` first, case-sensitive,
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
                           f"map it with event_map / --event-map NAME=view|cart|purchase|return")
    if all(k == v for k, v in target.items()):
        return df, source  # already canonical: no need to copy the column
    mapped = pl.col("event_type").replace_strict(list(target), list(target.values()), return_dtype=pl.String)
    df = df.with_columns(mapped)
    if any(v is None for v in target.values()):
        df, source = with_lines(df, source)
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
