"""Readers for the public datasets in ``../shared/data`` (and any file of the same format).

===========================  ==================================================  =====================
reader                       format                                              returns
===========================  ==================================================  =====================
:func:`read_beauty`          ``user item1 item2 ...`` per line (S3-Rec Amazon)   :class:`Sequences`
:func:`read_sessions`        one session of item ids per line (SR-GNN train)     raw-id lists
:func:`read_prefix_targets`  ``prefix<TAB>target`` per line (SR-GNN test)        raw-id lists
:func:`read_session_split`   both SR-GNN files, in index space                   :class:`SessionSplit`
:func:`read_online_shoppers` UCI Online Shoppers CSV (``,`` or ``;``)            features, labels
:func:`read_cdnow`           CDNOW ``id [sample_id] yyyymmdd cds dollars``       DataFrame
:func:`read_oj`              Dominick's OJ CSV/Parquet (BDS or store-week)       DataFrame
:func:`read_table`           any CSV/Parquet table, types inferred               DataFrame
===========================  ==================================================  =====================

A bad line raises :class:`~shopml.errors.DataError` naming the file and the 1-based line.
Files whose item ids are positive integers are already indexed: their :class:`IdMap` is
``1..max id``, so the item index equals the raw id (S3-Rec, SR-GNN files).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.txt"
    >>> _ = p.write_text("1 3 1 2\\n2 2 3\\n")
    >>> s = read_beauty(p)
    >>> s.n_users, s.n_items, s[0].tolist(), len(s.user_ids[0])  # user ids are pseudonymized
    (2, 3, [3, 1, 2], 32)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from shopml.data.sequences import IdMap, Sequences
from shopml.errors import DataError

__all__ = [
    "SessionSplit",
    "read_beauty",
    "read_sessions",
    "read_prefix_targets",
    "read_session_split",
    "read_online_shoppers",
    "read_cdnow",
    "read_oj",
    "read_table",
    "OJ_COLUMNS",
    "SHOPPERS_NUMERIC",
    "SHOPPERS_CATEGORICAL",
]


# --------------------------------------------------------------------------- helpers


def _read_lines(path) -> list[str]:
    """Lines of a UTF-8 text file (CRLF accepted, a final newline optional)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read file ({e.strerror})", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError("not UTF-8 text", path=path, row=raw.count(b"\n", 0, e.start) + 1) from None
    if "\x00" in text:
        raise DataError("binary data (NUL bytes)", path=path, row=text.count("\n", 0, text.index("\x00")) + 1)
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise DataError("empty file", path=path)
    return lines


def _tokens(lines: list[str]) -> pl.Series:
    """Whitespace-separated tokens of every line, as a list Series (vectorized regex)."""
    return pl.Series("t", lines, dtype=pl.Utf8).str.extract_all(r"\S+")


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def _item_map(*token_series: pl.Series) -> IdMap:
    """Item map of files that are already indexed keeps their ids (see :func:`_indexed_map`);
    other ids get the sorted distinct ids."""
    dense = _indexed_map(*token_series)
    return dense if dense is not None else IdMap(pl.concat(token_series).drop_nulls().unique().sort().to_list())


def _indexed_map(*token_series: pl.Series) -> IdMap | None:
    """``1..max id`` when every id is a positive integer (no leading zeros), so index == raw
    id and items that only a sibling split or the original full data hold still count
    (SR-GNN's ``n_node``); None otherwise (or for very sparse integers)."""
    uniq = pl.concat([t.drop_nulls() for t in token_series]).unique()
    as_int = uniq.cast(pl.Int64, strict=False)
    dense = (
        len(uniq) > 0
        and as_int.null_count() == 0
        and as_int.min() >= 1
        and not uniq.str.starts_with("0").any()
        and as_int.max() <= 10 * len(uniq) + 1000  # a huge id space would waste memory
    )
    return IdMap(np.arange(1, as_int.max() + 1).astype(str)) if dense else None


def _csr(token_lists: pl.Series, item_map: IdMap, ids: list[str]) -> Sequences:
    lengths = token_lists.list.len().to_numpy().astype(np.int64)
    items = item_map.encode(token_lists.explode().drop_nulls()) if lengths.sum() else np.zeros(0, np.int64)
    return Sequences(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), items, ids, item_map)


# ------------------------------------------------------------------------ sequences


def read_beauty(path, *, pseudonymize: bool = True) -> Sequences:
    """Read an S3-Rec style sequence file: one user per line, ``user item1 item2 ...`` in
    chronological order. User ids are pseudonymized (HMAC) unless ``pseudonymize=False``.

    On ``Beauty.txt``: 22,363 users, 12,101 items, 198,502 actions.

    Example (not run): ``train, valid, test = leave_one_out(read_beauty("Beauty.txt"))``
    """
    from shopml.privacy import pseudonymize as _pseudo

    lines = _read_lines(path)
    toks = _tokens(lines)
    row = _first_bad((toks.list.len() < 2).to_numpy())
    if row is not None:
        raise DataError("expected 'user item1 item2 ...' (a user with at least one item)", path=path, row=row + 1)
    users = toks.list.first()
    dup = _first_bad(users.is_duplicated().to_numpy() & ~users.is_first_distinct().to_numpy())
    if dup is not None:
        raise DataError(f"user {users[dup]!r} appears twice", path=path, row=dup + 1, column="user")
    items = toks.list.slice(1)
    user_ids = users.to_list()
    user_ids = _pseudo(user_ids) if pseudonymize else user_ids
    return _csr(items, _item_map(items.explode()), user_ids)


@dataclass
class SessionSplit:
    """A session-based train/test split (SR-GNN style).

    Attributes:
        train_sessions: training sessions as CSR :class:`Sequences` (``user_ids`` are the
            1-based line numbers).
        test_prefixes: test prefixes as CSR (items unknown to the training map dropped).
        test_targets: int64 ``[n_test]`` target item indices (0 = unknown in training).
        item_map: raw item id <-> index: ``1..max id`` (SR-GNN files are already indexed),
            else (leading zeros, very sparse ids) the distinct ids of the training sessions.

    A training session of length ``n`` gives ``n - 1`` next-item *cases* (every prefix and
    the item after it); :attr:`n_train_cases` counts them (369,859 on Yoochoose 1/64).
    """

    train_sessions: Sequences
    test_prefixes: Sequences
    test_targets: np.ndarray
    item_map: IdMap

    @property
    def n_train_cases(self) -> int:
        return int(np.maximum(self.train_sessions.lengths - 1, 0).sum())

    @property
    def n_test_cases(self) -> int:
        return len(self.test_targets)


def read_sessions(path) -> list[list[str]]:
    """Read ``train_sessions.txt`` (SR-GNN): one session per line, integer item ids
    separated by whitespace, as raw-id lists (the session estimators' input).

    A blank line or a non-integer id raises DataError naming the file, line and column.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "train_sessions.txt"
        >>> _ = p.write_text("1 2 3\\n4 1\\n")
        >>> read_sessions(p)
        [['1', '2', '3'], ['4', '1']]
    """
    return _session_tokens(path).to_list()


def read_prefix_targets(path) -> tuple[list[list[str]], list[str]]:
    """Read ``test_prefix_target.tsv`` (SR-GNN): ``prefix items<TAB>target`` per line, as
    ``(prefixes, targets)`` raw-id lists. Bad lines raise as in :func:`read_sessions`.

    Example (not run): ``prefixes, targets = read_prefix_targets("test_prefix_target.tsv")``
    """
    prefixes, targets = _prefix_target_tokens(path)
    return prefixes.to_list(), targets.list.first().to_list()


def read_session_split(train_path, test_path) -> SessionSplit:
    """Read both SR-GNN files (see :func:`read_sessions`, :func:`read_prefix_targets`) into
    index space.

    On Yoochoose 1/64: 369,859 train cases, 55,898 test cases, 37,483 items.

    Example (not run): ``split = read_session_split("train_sessions.txt", "test_prefix_target.tsv")``
    """
    train_toks = _session_tokens(train_path)
    prefix_toks, target_toks = _prefix_target_tokens(test_path)
    item_map = _indexed_map(train_toks.explode(), prefix_toks.explode(), target_toks.explode())
    # Not indexed (leading zeros, very sparse ids): the map holds what training saw; unseen test items get 0.
    item_map = item_map if item_map is not None else _item_map(train_toks.explode())
    train = _csr(train_toks, item_map, [str(i) for i in range(1, len(train_toks) + 1)])
    prefixes = _csr(prefix_toks, item_map, [str(i) for i in range(1, len(prefix_toks) + 1)])
    prefixes = prefixes.select_events(prefixes.items > 0)
    targets = item_map.encode(target_toks.list.first())
    return SessionSplit(train, prefixes, targets.astype(np.int64), item_map)


def _session_tokens(path) -> pl.Series:
    lines = pl.Series("l", _read_lines(path), dtype=pl.Utf8)
    toks = _tokens(lines.to_list())
    _raise_first(path, [(toks.list.len() < 1, "empty session", "session")], ids=[(lines, "session")])
    return toks


def _prefix_target_tokens(path) -> tuple[pl.Series, pl.Series]:
    lines = pl.Series("l", _read_lines(path), dtype=pl.Utf8)
    parts = lines.str.split("\t")
    prefix = parts.list.get(0, null_on_oob=True).fill_null("")
    target = parts.list.get(1, null_on_oob=True).fill_null("")
    prefix_toks, target_toks = _tokens(prefix.to_list()), _tokens(target.to_list())
    shape = (parts.list.len() != 2) | (target_toks.list.len() != 1)
    _raise_first(path, [(shape, "expected 'prefix items<TAB>one target item'", "target"),
                        (prefix_toks.list.len() < 1, "empty prefix", "prefix")],
                 ids=[(prefix, "prefix"), (target, "target")])
    return prefix_toks, target_toks


def _raise_first(path, checks, ids) -> None:
    """Raise for the first line that fails a ``(mask, message, column)`` check or holds a
    non-integer id in one of the ``(text, column)`` fields. SR-GNN ids are integers, so any
    other token marks a corrupt line (and would silently turn off the indexed item map)."""
    checks = checks + [(text.str.contains(r"[^0-9\s]"), text, column) for text, column in ids]
    firsts = [_first_bad(mask.to_numpy()) for mask, _, _ in checks]
    found = [(row, k) for k, row in enumerate(firsts) if row is not None]
    if not found:
        return
    row, k = min(found)
    _, what, column = checks[k]
    if isinstance(what, pl.Series):
        text = what[row]
        token = next((t for t in text.split() if not re.fullmatch(r"[0-9]+", t)), text.strip())
        what = f"item id {token[:20]!r} is not an integer"
    raise DataError(what, path=path, row=row + 1, column=column)


# ---------------------------------------------------------------------------- tables


def _read_csv_text(path, separator: str) -> pl.DataFrame:
    """All columns as strings, so a bad value can be reported with its row and column."""
    _read_lines(path)  # empty / binary / non-UTF-8 checks with a line number
    try:
        return pl.read_csv(path, separator=separator, infer_schema=False, truncate_ragged_lines=False)
    except pl.exceptions.PolarsError as e:
        raise DataError(f"malformed CSV ({str(e).splitlines()[0]})", path=path) from None


def _require(df: pl.DataFrame, columns, path) -> None:
    for col in columns:
        if col not in df.columns:
            raise DataError("missing required column", path=path, column=col)


def _cast(df: pl.DataFrame, column: str, dtype, path, header_rows: int = 1) -> pl.Series:
    """Strict numeric cast of a text (or already typed) column; the first missing,
    unparsable or non-finite value raises with its line."""
    raw = df[column].str.strip_chars() if df[column].dtype == pl.Utf8 else df[column]
    out = raw.cast(dtype, strict=False)
    bad = out.is_null() | (~out.is_finite() if dtype == pl.Float64 else False)
    row = _first_bad(bad.to_numpy())
    if row is not None:
        what = "missing value" if raw[row] is None or raw[row] == "" else f"not a finite number: {raw[row]!r}"
        raise DataError(what, path=path, row=row + 1 + header_rows, column=column)
    return out


def _ids(df: pl.DataFrame, column: str, path, header_rows: int = 1) -> pl.Series:
    """An id column as stripped text (as in the file); a missing id raises with its line."""
    out = df[column].cast(pl.Utf8).str.strip_chars()
    row = _first_bad((out.is_null() | (out == "")).to_numpy())
    if row is not None:
        raise DataError("missing value", path=path, row=row + 1 + header_rows, column=column)
    return out


def _bools(df: pl.DataFrame, column: str, path) -> pl.Series:
    raw = df[column].str.strip_chars().str.to_lowercase()
    out = raw.replace_strict({"true": True, "1": True, "false": False, "0": False}, default=None,
                             return_dtype=pl.Boolean)
    row = _first_bad(out.is_null().to_numpy())
    if row is not None:
        raise DataError(f"expected TRUE/FALSE, got {df[column][row]!r}", path=path, row=row + 2, column=column)
    return out


SHOPPERS_NUMERIC = (
    "Administrative", "Administrative_Duration", "Informational", "Informational_Duration",
    "ProductRelated", "ProductRelated_Duration", "BounceRates", "ExitRates", "PageValues",
    "SpecialDay", "OperatingSystems", "Browser", "Region", "TrafficType",
)
SHOPPERS_CATEGORICAL = ("Month", "VisitorType")


def read_online_shoppers(path) -> tuple[pl.DataFrame, np.ndarray]:
    """Read the UCI Online Shoppers Purchasing Intention CSV (comma or semicolon).

    Returns ``(features, labels)``: the 17 feature columns (14 numeric as Float64, ``Month``
    and ``VisitorType`` as strings, ``Weekend`` as Boolean) and int8 labels from ``Revenue``.
    On the UCI file: 12,330 sessions, 1,908 with a purchase.

    Example (not run): ``X, y = read_online_shoppers("online_shoppers_intention.csv")``
    """
    head = _read_lines(path)[0]
    df = _read_csv_text(path, ";" if head.count(";") > head.count(",") else ",")
    _require(df, (*SHOPPERS_NUMERIC, *SHOPPERS_CATEGORICAL, "Weekend", "Revenue"), path)
    feats = {c: _cast(df, c, pl.Float64, path) for c in SHOPPERS_NUMERIC}
    for c in SHOPPERS_CATEGORICAL:
        feats[c] = df[c].str.strip_chars()
    feats["Weekend"] = _bools(df, "Weekend", path)
    labels = _bools(df, "Revenue", path).cast(pl.Int8).to_numpy()
    order = [c for c in df.columns if c in feats]
    return pl.DataFrame(feats).select(order), labels


def read_cdnow(path) -> pl.DataFrame:
    """Read a CDNOW transaction file: ``customer_id yyyymmdd cds dollars`` (the master file,
    with an optional header line) or ``customer_id sample_id yyyymmdd cds dollars`` (the
    1/10 sample). Whitespace-separated.

    Returns ``customer_id`` (Utf8, as in the file), ``date`` (Date), ``cds`` (Int64),
    ``dollars`` (Float64). Master: 23,570 customers and 69,659 transactions.

    Example (not run): ``tx = read_cdnow("CDNOW_master.txt")``
    """
    lines = _read_lines(path)
    toks = _tokens(lines)
    first = toks[0].to_list()
    header = 1 if first and not first[0].isdigit() else 0
    toks = toks.slice(header)
    n = toks.list.len().to_numpy()
    width = int(n[0]) if len(n) else 0
    row = _first_bad((n != width) | (width not in (4, 5)))
    if row is not None or not len(n):
        raise DataError("expected 'customer_id [sample_id] yyyymmdd cds dollars'",
                        path=path, row=(row or 0) + 1 + header)
    off = width - 4
    cols = pl.DataFrame({name: toks.list.get(i + (off if i else 0)) for i, name in
                         enumerate(("customer_id", "date", "cds", "dollars"))})
    date = cols["date"].str.to_date("%Y%m%d", strict=False)
    row = _first_bad(date.is_null().to_numpy())
    if row is not None:
        raise DataError(f"bad date {cols['date'][row]!r} (yyyymmdd)", path=path, row=row + 1 + header, column="date")
    return pl.DataFrame({
        "customer_id": cols["customer_id"],
        "date": date,
        "cds": _cast(cols, "cds", pl.Int64, path, header_rows=header),
        "dollars": _cast(cols, "dollars", pl.Float64, path, header_rows=header),
    })


OJ_COLUMNS = ("store", "brand", "week", "price", "feat", "sales", "logmove")


def read_oj(path, demo_path=None) -> pl.DataFrame:
    """Read Dominick's orange juice data: the BDS file (``sales, price, brand, feat``) or the
    store-week export (``store, brand, week, logmove, feat, price``), as CSV or (by suffix)
    Parquet. Both get ``sales`` and ``logmove`` (one derived from the other). With
    ``demo_path`` (the store demographics CSV, key ``STORE``) the lower-cased demographics
    are joined on ``store``: the columns beyond :data:`OJ_COLUMNS`.

    ``store`` and ``brand`` are ids, kept as text; ``week`` is Int64, the rest Float64. A
    missing or non-finite number, a missing id or a price <= 0 raises DataError with its row.
    On ``oj_store_week_3brands.csv``: 28,947 rows, 83 stores x 3 brands.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "oj.csv"
        >>> _ = p.write_text("store,brand,week,logmove,feat,price\\n2,tropicana,40,0.0,0,3.87\\n")
        >>> read_oj(p).row(0, named=True)
        {'store': '2', 'brand': 'tropicana', 'week': 40, 'price': 3.87, 'feat': 0.0, 'sales': 1.0, 'logmove': 0.0}
    """
    parquet = Path(path).suffix == ".parquet"
    df = read_table(path) if parquet else _read_csv_text(path, ",")
    header = 0 if parquet else 1
    df = df.rename({c: c.strip().lower() for c in df.columns})
    _require(df, ("price", "brand", "feat"), path)
    if "sales" not in df.columns and "logmove" not in df.columns:
        raise DataError("missing required column (sales or logmove)", path=path, column="sales")
    out = {c: _ids(df, c, path, header) for c in ("store", "brand") if c in df.columns}
    for col, dtype in (("week", pl.Int64), ("price", pl.Float64), ("feat", pl.Float64), ("sales", pl.Float64),
                       ("logmove", pl.Float64)):
        if col in df.columns:
            out[col] = _cast(df, col, dtype, path, header)
    row = _first_bad((out["price"] <= 0).to_numpy())
    if row is not None:
        raise DataError("price must be positive", path=path, row=row + 1 + header, column="price")
    if "sales" not in out:
        out["sales"] = out["logmove"].exp()
    if "logmove" not in out:
        out["logmove"] = out["sales"].log()
    result = pl.DataFrame(out).select([c for c in OJ_COLUMNS if c in out])
    if demo_path is not None:
        result = _join_demographics(result, demo_path, path)
    return result


def _join_demographics(df: pl.DataFrame, demo_path, path) -> pl.DataFrame:
    if "store" not in df.columns:
        raise DataError("store demographics need a 'store' column in the sales file", path=path, column="store")
    demo = _read_csv_text(demo_path, ",")
    demo = demo.rename({c: c.strip().lower() for c in demo.columns})
    _require(demo, ("store",), demo_path)
    demo = pl.DataFrame({c: _ids(demo, c, demo_path) if c == "store" else _cast(demo, c, pl.Float64, demo_path)
                         for c in demo.columns})
    return df.join(demo, on="store", how="left", maintain_order="left")


def read_table(path) -> pl.DataFrame:
    """Any CSV or (by suffix) Parquet table, column types inferred from the first 10,000 rows:
    the price commands' input, whose columns the user names.

    Example (not run): ``df = read_table("market.parquet")``
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path=path)
    try:
        return pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema_length=10000)
    except Exception as exc:  # polars raises several types for unreadable files
        raise DataError(f"cannot read table: {str(exc).splitlines()[0]}", path=path) from None
