"""Readers that turn event files into frames with canonical column names.

Each reader takes a path (any file of that format, not just the shipped fixtures) and
returns a :class:`RawTable`; :func:`shopml.data.events.read_events` then parses types,
maps event names, validates, pseudonymizes and sorts. Select a reader with ``format=``:

``events``
    CSV (separator sniffed from the header: ``,`` ``;`` tab ``|``), Parquet or JSONL,
    chosen by suffix (``.parquet``/``.pq``, ``.jsonl``/``.ndjson``/``.json``, else CSV),
    optionally ``.gz`` / ``.zst`` compressed, with the canonical columns (rename foreign
    ones with ``column_map``). A folder, glob or list of such files is read as one log
    (:mod:`shopml.data.inputs`), and so is a ``postgresql://`` URI with ``table=`` / ``query=``.
``taobao``
    Alibaba UserBehavior: ``user,item,category,behavior,unix_seconds``, no header.
    Behaviours pv -> view, cart -> cart, buy -> purchase, and **fav -> view**: a favourite
    is interest without a step toward checkout, so counting it as a cart would inflate the
    cart-to-purchase funnel that intent models learn from, while dropping it would lose a
    user-item interaction the recommenders can use. Override with ``event_map={"fav": "cart"}``
    or ``{"fav": None}`` (drop).
``otto``
    OTTO JSONL, one session per line: ``{"session", "events": [{"aid", "ts" (ms), "type"}]}``
    with types clicks/carts/orders. The session is the user.
``yoochoose-clicks``
    ``SessionId<TAB>ItemId<TAB>Time`` (unix seconds; header optional, as prepared by
    session-rec), or the original comma-separated ``SessionId,Timestamp,ItemId,Category``
    with ISO timestamps. Clicks are views; the session is the user.
``diginetica-views``
    ``session_id;user_id;item_id;timeframe;eventdate`` with a header. The timestamp is
    ``eventdate`` (midnight UTC) plus ``timeframe`` milliseconds (time since the session
    began), which orders events within a session. A ``NA`` user is replaced by the session
    (``session:<id>``), so sessions without a user count as users.

In the formats where a session stands for a user, ``session_id`` is pseudonymized along
with ``user_id`` so the raw id cannot leak through it.

Example:
    >>> from shopml.data.raw import FORMATS
    >>> sorted(FORMATS)
    ['diginetica-views', 'events', 'otto', 'taobao', 'yoochoose-clicks']
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from shopml.data.compression import file_kind, read_head
from shopml.data.inputs import (
    expand_paths,
    header_renames,
    is_sql_uri,
    read_sql_source,
    scan_files,
    sniff_separator,
)
from shopml.data.validate import (
    Source,
    check_columns,
    check_text_file,
    first_true,
    locate_bad_field_count,
    locate_bad_json_line,
    locate_bad_utf8,
)
from shopml.errors import ConfigError, DataError

__all__ = ["RawTable", "FORMATS", "read_raw", "read_taobao", "read_otto", "read_yoochoose_clicks",
           "read_diginetica_views"]

@dataclass
class RawTable:
    """Columns named canonically but not yet typed, plus how to report rows of the file.

    ``csv_fields`` (separator, number of fields, name of the last column) is set for
    delimited text: a line cut short leaves its last column empty, so only rows with an empty
    last column are checked for truncation. ``hashed`` lists the columns that hold user
    identities and are pseudonymized together with ``user_id``.
    """

    df: pl.DataFrame
    source: Source
    event_map: dict = field(default_factory=dict)
    csv_fields: tuple[str, int, str] | None = None
    hashed: tuple[str, ...] = ()


def read_raw(path, format: str = "events", *, table: str | None = None, query: str | None = None) -> RawTable:
    """Read ``path`` (a file, folder, glob, list or PostgreSQL URI) in ``format`` (see the
    module docstring) into a :class:`RawTable`.

    Example:
        >>> read_raw("exports/", "events").source.files[:1]  # doctest: +SKIP
        ('exports/2024-01-01.csv',)
    """
    try:
        reader = FORMATS[format]
    except KeyError:
        raise ConfigError(f"unknown format {format!r}; choose one of {', '.join(sorted(FORMATS))}") from None
    if is_sql_uri(path):
        df, source = read_sql_source(path, table, query)
        out = RawTable(df, source)
    elif table is not None or query is not None:
        raise ConfigError("table= and query= apply to a postgresql:// URI only")
    else:
        files = expand_paths(path)
        out = _read_one(files[0], reader) if len(files) == 1 else _read_many(files, format, reader)
    if out.df.height == 0:
        where = "no events after the header" if out.source.first_line > 1 else "no events"
        raise DataError(where, path=out.source.path, row=out.source.first_line)
    return out


def _read_one(path: Path, reader) -> RawTable:
    table = reader(path)
    if table.csv_fields is not None:
        sep, n, last = table.csv_fields
        if table.df.select(_short(table.df, last).any()).item():
            err = locate_bad_field_count(path, sep, n)
            if err is not None:
                raise err
    return table


def _short(df: pl.DataFrame, last: str) -> pl.Expr:
    """Rows that may be a line cut short: the last column is empty on a non-blank row."""
    data = [c for c in df.columns if not c.startswith("_")]
    return pl.col(last).is_null() & ~pl.all_horizontal(pl.col(data).is_null())


def _read_many(files: list[Path], format: str, reader) -> RawTable:
    """Several files as one log: lazily scanned for ``events``, file by file otherwise."""
    if format != "events":
        tables = [_read_one(f, reader) for f in files]
        frames = [t.df.with_columns(_line_expr(t), pl.lit(i, dtype=pl.UInt32).alias("_file"))
                  for i, t in enumerate(tables)]
        source = Source(str(files[0]), tables[0].source.first_line, line_col="_line",
                        files=tuple(map(str, files)), file_col="_file")
        return RawTable(pl.concat(frames, how="diagonal_relaxed"), source, tables[0].event_map,
                        None, tables[0].hashed)
    try:
        df, source, last_cols = scan_files(files, _sniff_first_line)
    except (pl.exceptions.PolarsError, OSError) as exc:
        for f in files:  # slow path on bad input only: the file reader names file and line
            _read_one(f, reader)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"unreadable files: {msg}", path=files[0]) from None
    n_fields = len(df.columns) - 2  # without _line and _file
    for last, idx in last_cols.items():
        hit = df.filter(pl.col("_file").is_in(idx) & _short(df, last))["_file"].unique().sort()
        for i in hit.to_list():
            f = files[i]
            err = locate_bad_field_count(f, sniff_separator(f, _sniff_first_line(f)), n_fields)
            if err is not None:
                raise err
    if not last_cols:
        return RawTable(df, source)
    sep = sniff_separator(files[0], _sniff_first_line(files[0]))
    return RawTable(df, source, csv_fields=(sep, n_fields, df.columns[-3]))


def _line_expr(table: RawTable) -> pl.Expr:
    if table.source.line_col is not None and table.source.line_col in table.df.columns:
        return pl.col(table.source.line_col).cast(pl.UInt32).alias("_line")
    return (pl.int_range(pl.len(), dtype=pl.UInt32) + table.source.first_line).alias("_line")


# ---------------------------------------------------------------------------------------
# Parsing helpers: polars does the work, the locators explain a failure


def _sniff_first_line(path: Path) -> str:
    head = read_head(path, 1 << 16)
    if head is None:  # zstd without a Python decompressor: let polars decompress
        try:
            lines = pl.read_csv(path, has_header=False, separator="\x1f", quote_char=None,
                                infer_schema=False, n_rows=1, new_columns=["line"])
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise _explain(path, exc) from None
        return (lines["line"][0] or "") if lines.height else ""
    return head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")


def _read_csv(path: Path, separator: str, *, has_header: bool, names=None) -> pl.DataFrame:
    """All columns as strings (types are parsed later, where failures can be located)."""
    try:
        return pl.read_csv(
            path, separator=separator, has_header=has_header, new_columns=names, infer_schema=False,
            truncate_ragged_lines=False, raise_if_empty=False,
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _explain(path, exc, csv=(separator, len(names) if names else None)) from None


def _explain(path: Path, exc: Exception, *, csv=None, json=False) -> DataError:
    msg = str(exc)
    if "utf-8" in msg.lower() or "utf8" in msg.lower():
        return locate_bad_utf8(path)
    if csv is not None:
        sep, n = csv
        n = n or len(_sniff_first_line(path).split(sep))
        err = locate_bad_field_count(path, sep, n)
        if err is not None:
            return err
    if json:
        return locate_bad_json_line(path)
    first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    return DataError(f"unreadable file: {first}", path=path)


def _read_parquet(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise DataError("file not found", path=path)
    comp = file_kind(path)[1]
    if comp == "zst":
        raise DataError("zstd-compressed Parquet is not read; Parquet compresses inside the file "
                        "(write it with compression='zstd')", path=path)
    magic = read_head(path, 4)
    if not magic:
        raise DataError("empty file", path=path, row=1)
    if magic != b"PAR1":
        raise DataError("not a Parquet file (bad magic bytes)", path=path, row=1)
    try:
        if comp == "gz":  # Parquet needs random access: decompress into memory
            with gzip.open(path, "rb") as f:
                return pl.read_parquet(io.BytesIO(f.read()))
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"unreadable Parquet file: {first}", path=path) from None


def _read_jsonl(path: Path) -> pl.DataFrame:
    check_text_file(path)
    head = (read_head(path, 64) or b"").lstrip()
    try:
        if head.startswith(b"["):  # a JSON array of records, not lines
            return pl.read_json(path, infer_schema_length=None)
        return pl.read_ndjson(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise _explain(path, exc, json=True) from None


# ---------------------------------------------------------------------------------------
# Formats


def _read_events_file(path: Path) -> RawTable:
    kind = file_kind(path)[0]
    if kind == "parquet":
        return RawTable(_read_parquet(path), Source(str(path), first_line=1))
    if kind == "json":
        return RawTable(_read_jsonl(path), Source(str(path), first_line=1))
    check_text_file(path)
    sep = sniff_separator(path, _sniff_first_line(path))
    df = _read_csv(path, sep, has_header=True)
    if not df.columns:
        raise DataError("no header line with column names", path=path, row=1)
    df = df.rename(header_renames(path, df.columns))
    return RawTable(df, Source(str(path), first_line=2), csv_fields=(sep, len(df.columns), df.columns[-1]))


def read_taobao(path) -> RawTable:
    """Taobao UserBehavior CSV (no header): user, item, category, behavior, unix seconds.

    Example:
        >>> read_raw("UserBehavior.csv", "taobao").df.columns  # doctest: +SKIP
    """
    path = Path(path)
    check_text_file(path)
    names = ["user_id", "item_id", "category", "event_type", "timestamp"]
    df = _read_csv(path, ",", has_header=False, names=names)
    return RawTable(df, Source(str(path), first_line=1), event_map={"fav": "view"},
                    csv_fields=(",", 5, "timestamp"))


def read_otto(path) -> RawTable:
    """OTTO sessions JSONL: one session per line with its events (aid, ts in ms, type).

    Example:
        >>> read_raw("train.jsonl", "otto").df.columns  # doctest: +SKIP
    """
    path = Path(path)
    df = _read_jsonl(path)
    source = Source(str(path), first_line=1, line_col="_line")
    check_columns(df.columns, source, required=("session", "events"))
    df = df.with_row_index("_line", offset=1)
    if not isinstance(df.schema["events"], pl.List):
        idx = first_true(df, pl.lit(True))
        raise source.error(df, idx, "events", "expected a list of events")
    for col in ("session", "events"):
        idx = first_true(df, pl.col(col).is_null())
        if idx is not None:
            raise source.error(df, idx, col, "missing value")
    df = df.filter(pl.col("events").list.len() > 0).explode("events")
    if not isinstance(df.schema["events"], pl.Struct):
        raise source.error(df, 0, "events", "expected events as objects {aid, ts, type}")
    df = df.unnest("events")
    check_columns(df.columns, source, required=("aid", "ts", "type"))
    df = df.select(
        pl.col("session").cast(pl.String).alias("user_id"),
        pl.col("aid").cast(pl.String).alias("item_id"),
        pl.col("ts").alias("timestamp"),
        pl.col("type").cast(pl.String).alias("event_type"),
        pl.col("session").cast(pl.String).alias("session_id"),
        "_line",
    )
    return RawTable(df, source, hashed=("session_id",))


def read_yoochoose_clicks(path) -> RawTable:
    """YOOCHOOSE clicks: ``SessionId<TAB>ItemId<TAB>Time`` or the original comma format.

    Example:
        >>> read_raw("yoochoose-clicks.dat", "yoochoose-clicks").df.columns  # doctest: +SKIP
    """
    path = Path(path)
    check_text_file(path)
    first = _sniff_first_line(path)
    sep = "\t" if "\t" in first else ","
    fields = first.split(sep)
    has_header = not fields[0].strip().isdigit()
    if has_header:
        alias = {"sessionid": "session_id", "itemid": "item_id", "time": "timestamp",
                 "timestamp": "timestamp", "category": "category"}
        df = _read_csv(path, sep, has_header=True)
        df = df.rename({c: alias.get(c.strip().lower(), c) for c in df.columns})
    else:
        names = (["session_id", "item_id", "timestamp"] if len(fields) == 3
                 else ["session_id", "timestamp", "item_id", "category"])
        df = _read_csv(path, sep, has_header=False, names=names)
    source = Source(str(path), first_line=2 if has_header else 1)
    check_columns(df.columns, source, required=("session_id", "item_id", "timestamp"))
    last = df.columns[-1]
    df = df.with_columns(pl.col("session_id").alias("user_id"), pl.lit("view").alias("event_type"))
    return RawTable(df, source, csv_fields=(sep, len(fields), last), hashed=("session_id",))


def read_diginetica_views(path) -> RawTable:
    """DIGINETICA item views: ``session_id;user_id;item_id;timeframe;eventdate``.

    Example:
        >>> read_raw("train-item-views.csv", "diginetica-views").df.columns  # doctest: +SKIP
    """
    path = Path(path)
    check_text_file(path)
    df = _read_csv(path, ";", has_header=True)
    df = df.rename({c: c.strip().lower().lstrip("\ufeff") for c in df.columns})
    source = Source(str(path), first_line=2)
    check_columns(df.columns, source, required=("session_id", "user_id", "item_id", "timeframe", "eventdate"))
    fields = (";", len(df.columns))
    if df.select(pl.any_horizontal(pl.all().is_null()).any()).item():
        err = locate_bad_field_count(path, *fields)
        if err is not None:
            raise err
    day = pl.col("eventdate").str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    offset = pl.col("timeframe").str.strip_chars().cast(pl.Int64, strict=False)
    for col, parsed, what in (("eventdate", day, "unparsable date (expected YYYY-MM-DD)"),
                              ("timeframe", offset, "unparsable number (milliseconds)")):
        idx = first_true(df, parsed.is_null() & pl.col(col).is_not_null())
        if idx is not None:
            raise source.error(df, idx, col, f"{what}: {df[col][idx]!r}")
    user = pl.col("user_id").str.strip_chars()
    df = df.select(
        pl.when(user.is_null() | user.is_in(["NA", ""])).then(pl.lit("session:") + pl.col("session_id"))
        .otherwise(user).alias("user_id"),
        "item_id",
        (day.cast(pl.Datetime("us", "UTC")) + pl.duration(milliseconds=offset)).alias("timestamp"),
        pl.lit("view").alias("event_type"),
        "session_id",
    )
    return RawTable(df, source, hashed=("session_id",))


FORMATS = {
    "events": _read_events_file,
    "taobao": read_taobao,
    "otto": read_otto,
    "yoochoose-clicks": read_yoochoose_clicks,
    "diginetica-views": read_diginetica_views,
}
