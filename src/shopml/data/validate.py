"""Validation of event logs: errors stop the run, warnings go to the quality report.

Errors raise :class:`shopml.errors.DataError` whose one-line message names the file, the
row (the 1-based *line number in the file* for text formats, the 1-based record number for
Parquet) and the column:

* empty or header-only file; binary, UTF-16 or otherwise non-UTF-8 data;
* a missing required column, a missing value in a required column;
* a truncated line (fewer fields than the header) or a line with too many fields;
* an unparsable timestamp or number; an unknown event type with no mapping;
* a negative price.

Text rows are mapped to lines as "header + row index", which is exact unless a quoted
field spans several lines (then later lines are reported a little early).

Checks run in bulk with Polars expressions; only when one fails do we go back to find the
first offending row (the slow, exact path runs on bad files only).

Warnings are dicts ``{"kind", "count", "message", "first_row"}`` of these kinds:

* ``duplicates``: rows equal to an earlier row on (user_id, item_id, timestamp, event_type);
* ``out_of_order``: events earlier than the previous event of the same user in file order;
* ``single_event_users`` / ``single_event_items``: users / items seen exactly once;
* ``price_outliers``: positive prices outside Tukey's far fences (3 IQR) of log(price);
* ``blank_lines``: empty lines that were skipped.

Example:
    >>> import polars as pl
    >>> from datetime import datetime, timezone
    >>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> df = pl.DataFrame({"user_id": ["a", "a"], "item_id": ["x", "x"],
    ...                    "timestamp": [t, t], "event_type": ["view", "view"]})
    >>> [w["kind"] for w in validate_events(df)]
    ['duplicates']
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from shopml.data.compression import open_binary, read_head
from shopml.errors import DataError

__all__ = ["REQUIRED", "EVENT_TYPES", "Source", "validate_events", "check_canonical", "check_time_range"]

REQUIRED = ("user_id", "item_id", "timestamp", "event_type")
EVENT_TYPES = ("view", "cart", "purchase", "return")
#: Events before this are an error: no web shop logged them, and a wrong epoch unit lands here.
EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
#: Events later than now plus this are an error (clock skew of a day is tolerated).
FUTURE_SLACK = timedelta(days=1)
_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class Source:
    """Where a frame came from, so a row index can be turned into a file and a line.

    ``first_line`` is the line of the first data row (2 below a header); ``line_col`` names
    a column that holds each row's line directly (formats that explode nested records, and
    logs read from several files). With several files, ``file_col`` holds each row's index
    into ``files``.
    """

    path: str | None = None
    first_line: int = 1
    line_col: str | None = None
    files: tuple[str, ...] = ()
    file_col: str | None = None

    def line_of(self, df: pl.DataFrame, idx: int) -> int:
        if self.line_col is not None and self.line_col in df.columns:
            return int(df[self.line_col][idx])
        return self.first_line + idx

    def path_of(self, df: pl.DataFrame, idx: int) -> str | None:
        if self.file_col is not None and self.file_col in df.columns:
            return self.files[int(df[self.file_col][idx])]
        return self.path

    def error(self, df, idx, column, message) -> DataError:
        return DataError(message, path=self.path_of(df, idx), row=self.line_of(df, idx), column=column)

    def where(self, df: pl.DataFrame, idx: int) -> str:
        """``file line N`` of a row, for warning messages of logs read from several files."""
        path = self.path_of(df, idx)
        return f"{path} line {self.line_of(df, idx)}" if path else f"row {self.line_of(df, idx)}"


def with_lines(df: pl.DataFrame, source: Source) -> tuple[pl.DataFrame, Source]:
    """Materialize each row's line before rows are dropped, so later errors still point
    at the right line."""
    if source.line_col is not None and source.line_col in df.columns:
        return df, source
    df = df.with_row_index("_line", offset=source.first_line)
    return df, Source(source.path, source.first_line, "_line", source.files, source.file_col)


def first_true(df: pl.DataFrame, mask: pl.Expr) -> int | None:
    """Index of the first row where ``mask`` holds, or None (one vectorized pass)."""
    idx = df.select(mask.fill_null(False).arg_true().first()).item()
    return None if idx is None else int(idx)


# ---------------------------------------------------------------------------------------
# File-level checks (before parsing)


def check_text_file(path: Path) -> None:
    """Raise DataError for a missing, empty, UTF-16 or binary text file.

    Invalid UTF-8 further down the file is caught by the parser and located by
    :func:`locate_bad_utf8`.
    """
    if not path.exists():
        raise DataError("file not found", path=path)
    if path.is_dir():
        raise DataError("is a directory, expected an event file", path=path)
    head = read_head(path, _SNIFF_BYTES)
    if head is None:  # zstd without a decompressor here: polars still reads it
        return
    if not head.strip():
        raise DataError("empty file: no header and no events", path=path, row=1)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError("UTF-16 encoded text (byte-order mark); re-encode the file as UTF-8", path=path, row=1)
    nul = head.find(b"\x00")
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        raise DataError("binary data (NUL byte), expected UTF-8 text; UTF-16 or a compressed file?", path=path, row=line)
    _check_utf8(head, path, complete=len(head) < _SNIFF_BYTES)


def _check_utf8(data: bytes, path, complete: bool, line_offset: int = 0) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not complete and exc.start >= len(data) - 4:  # a character cut by the sniff window
            return
        line = line_offset + data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", path=path, row=line) from None


def locate_bad_utf8(path: Path) -> DataError:
    """The error for the first line of ``path`` that is not valid UTF-8 (slow path)."""
    f = open_binary(path)
    if f is None:
        return DataError("not UTF-8 text", path=path)
    with f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return DataError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", path=path, row=lineno)
    return DataError("unreadable text", path=path)


def locate_bad_field_count(path: Path, separator: str, n_fields: int) -> DataError | None:
    """The error for the first line whose field count differs from ``n_fields``, or None.

    Counts separators with one vectorized pass over the lines; lines holding a quote are
    re-checked with the csv module (a quoted field may contain the separator).
    """
    import csv

    lines = pl.read_csv(
        path, has_header=False, separator="\x1f", quote_char=None, infer_schema=False,
        new_columns=["line"], truncate_ragged_lines=True,
    ).with_row_index("i")
    bad = lines.filter(
        pl.col("line").is_not_null() & (pl.col("line").str.count_matches(separator, literal=True) != n_fields - 1)
    )
    for i, line in bad.head(1000).iter_rows():
        fields = next(csv.reader([line], delimiter=separator)) if '"' in line else line.split(separator)
        if len(fields) < n_fields:
            return DataError(
                f"truncated line: {len(fields)} fields, expected {n_fields}", path=path, row=int(i) + 1
            )
        if len(fields) > n_fields:
            return DataError(f"too many fields: {len(fields)}, expected {n_fields}", path=path, row=int(i) + 1)
    return None


def locate_bad_json_line(path: Path) -> DataError:
    """The error for the first line of a JSONL file that is not a JSON object (slow path)."""
    f = open_binary(path)
    if f is None:
        return DataError("unreadable JSON lines", path=path)
    with f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except UnicodeDecodeError:
                return DataError("not UTF-8 text", path=path, row=lineno)
            except json.JSONDecodeError as exc:
                what = "truncated line" if exc.pos >= len(raw.rstrip()) - 1 else "invalid JSON"
                return DataError(f"{what}: {exc.msg} at character {exc.pos + 1}", path=path, row=lineno)
            if not isinstance(obj, dict):
                return DataError("expected one JSON object per line", path=path, row=lineno)
    return DataError("unreadable JSON lines", path=path)


# ---------------------------------------------------------------------------------------
# Checks on the canonical frame


def check_columns(columns, source: Source, required=REQUIRED) -> None:
    """Raise for the first required column that is absent (row 1: the header)."""
    for col in required:
        if col not in columns:
            found = ", ".join(map(str, columns)) or "none"
            raise DataError(
                f"missing required column (found: {found}); map yours with column_map / --map",
                path=source.path, row=1 if source.first_line > 1 else None, column=col,
            )


def check_canonical(df: pl.DataFrame, source: Source | None = None) -> None:
    """Raise DataError for missing values in required columns, unknown event types, times
    outside [1990-01-01, now + 1 day], negative or non-finite prices and non-finite
    quantities in a frame that already has canonical column names and dtypes.

    Example:
        >>> df = pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "timestamp": [1], "event_type": ["click"]})
        >>> check_canonical(df, Source("e.csv", first_line=2))
        Traceback (most recent call last):
        shopml.errors.DataError: e.csv: row 2, column 'event_type': unknown event type 'click' (expected view, cart, purchase, return)
    """
    source = source or Source()
    check_columns(df.columns, source)
    for col in REQUIRED:
        empty = pl.col(col).is_null()
        if df.schema[col] == pl.String:
            empty = empty | (pl.col(col) == "")
        idx = first_true(df, empty)
        if idx is not None:
            raise source.error(df, idx, col, "missing value")
    idx = first_true(df, ~pl.col("event_type").is_in(EVENT_TYPES))
    if idx is not None:
        bad = df["event_type"][idx]
        raise source.error(df, idx, "event_type", f"unknown event type {bad!r} (expected {', '.join(EVENT_TYPES)})")
    check_time_range(df, source)
    for col in ("price", "quantity"):
        if col in df.columns and df.schema[col].is_float():
            idx = first_true(df, ~pl.col(col).is_finite())
            if idx is not None:
                raise source.error(df, idx, col, f"{col} must be a finite number, got {df[col][idx]}")
    if "price" in df.columns:
        idx = first_true(df, pl.col("price") < 0)
        if idx is not None:
            raise source.error(df, idx, "price", f"negative price {df['price'][idx]}")


def check_time_range(df: pl.DataFrame, source: Source) -> None:
    """Raise DataError at the first time before 1990-01-01 or over a day in the future.

    Why: a wrong time (year 9999, a unit mistaken for seconds) is not a warning, every job
    downstream walks the span (one log with year-9999 times made a job walk 416,000 weeks).
    """
    ts = df.schema["timestamp"]
    if not isinstance(ts, pl.Datetime):
        return
    latest = datetime.now(timezone.utc) + FUTURE_SLACK
    lo, hi = (EARLIEST, latest) if ts.time_zone else (EARLIEST.replace(tzinfo=None), latest.replace(tzinfo=None))
    col = pl.col("timestamp")
    idx = first_true(df, (col < lo) | (col > hi))
    if idx is not None:
        when = "before 1990-01-01" if df["timestamp"][idx] < lo else "more than a day in the future"
        raise source.error(df, idx, "timestamp", f"timestamp {df['timestamp'][idx]} is {when} "
                           "(wrong unit or format? pass timestamp_format / check the clock)")


def _warning(kind: str, count: int, message: str, first_row: int | None = None) -> dict:
    return {"kind": kind, "count": int(count), "message": message, "first_row": first_row}


def warning_at(kind: str, count: int, message: str, df: pl.DataFrame | None, idx: int | None,
               source: Source) -> dict:
    """A warning whose ``first_row`` is the line of row ``idx``; with several input files the
    message also names the file, since a line number alone is ambiguous."""
    if df is None or idx is None:
        return _warning(kind, count, message)
    if source.file_col is not None and source.file_col in df.columns:
        message = f"{message} (first at {source.where(df, idx)})"
    return _warning(kind, count, message, source.line_of(df, idx))


def validate_events(df: pl.DataFrame, *, source: Source | None = None) -> list[dict]:
    """Check a canonical frame (errors raise DataError) and return its warnings.

    Rows are read in their current order: pass the frame in file order for the
    out-of-order check to mean anything.
    """
    source = source or Source()
    check_canonical(df, source)
    return order_and_warn(df, df["user_id"].rank("dense"), source)[1]


def order_and_warn(df: pl.DataFrame, codes: pl.Series, source: Source) -> tuple[pl.Series, list[dict]]:
    """The permutation that sorts ``df`` by (user code, timestamp), stable in file order,
    plus every warning. ``codes`` are integers per user whose order is the wanted user order.
    """
    perm = _argsort(codes)
    u, ts = codes.gather(perm), df["timestamp"].gather(perm)
    # Stable sort by user keeps file order within a user: adjacent pairs reveal disorder.
    late = ((u == u.shift(1)) & (ts < ts.shift(1))).fill_null(False)
    warnings = []
    if late.any():
        rows = perm.filter(late)
        warnings.append(warning_at("out_of_order", rows.len(), f"{rows.len()} events are earlier than the "
                                   "user's previous event in file order (kept; events are sorted by time)",
                                   df, int(rows.min()), source))
        perm = _argsort(codes, df["timestamp"])
        u, ts = codes.gather(perm), df["timestamp"].gather(perm)
    dup = _duplicates(df, perm, u, ts, source)
    warnings += ([dup] if dup else []) + _singletons(df)
    if "price" in df.columns:
        w = _price_outliers(df, source)
        if w:
            warnings.append(w)
    return perm, warnings


def _argsort(*keys: pl.Series) -> pl.Series:
    """Stable row order by the given keys (ties keep file order)."""
    frame = pl.DataFrame({f"k{i}": k for i, k in enumerate(keys)})
    return frame.select(pl.arg_sort_by(frame.columns, maintain_order=True)).to_series()


def _duplicates(df, perm, u, ts, source) -> dict | None:
    # A duplicate shares user and timestamp with its original, so only rows in a
    # (user, timestamp) tie can be duplicates: hash that small subset, not every row.
    tie = ((u == u.shift(1)) & (ts == ts.shift(1))).fill_null(False)
    cand = perm.filter(tie | tie.shift(-1).fill_null(False))
    if cand.len() == 0:
        return None
    sub = pl.DataFrame({"u": u.filter(tie | tie.shift(-1).fill_null(False)), "row": cand}).with_columns(
        df.select("item_id", "timestamp", "event_type")[cand]
    )
    dup = sub.filter(pl.struct("u", "item_id", "timestamp", "event_type").is_first_distinct().not_())["row"]
    if dup.len() == 0:
        return None
    return warning_at("duplicates", dup.len(), f"{dup.len()} rows repeat an earlier row "
                      "(same user, item, timestamp and event type)", df, int(dup.min()), source)


def _singletons(df: pl.DataFrame) -> list[dict]:
    out = []
    for col, name in (("item_id", "items"), ("user_id", "users")):
        # is_unique().sum() counts ids seen once without materializing a group-by table.
        row = df.select(single=pl.col(col).is_unique().sum(), total=pl.col(col).n_unique()).row(0)
        single, total = int(row[0]), int(row[1])
        if single:
            out.append(_warning(f"single_event_{name}", single,
                                f"{single} {name} ({single / total:.1%}) have a single event"))
    return out


def _price_outliers(df: pl.DataFrame, source) -> dict | None:
    logp = pl.col("price").filter(pl.col("price") > 0).log()
    q = df.select(q1=logp.quantile(0.25), q3=logp.quantile(0.75))
    q1, q3 = q["q1"].item(), q["q3"].item()
    if q1 is None:
        return None
    lo, hi = q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)
    mask = (pl.col("price") > 0) & ((pl.col("price").log() < lo) | (pl.col("price").log() > hi))
    n = int(df.select(mask.sum()).item())
    if not n:
        return None
    import math

    return warning_at("price_outliers", n, f"{n} prices fall outside [{math.exp(lo):.4g}, "
                      f"{math.exp(hi):.4g}] (3 IQR fences of log price)", df, first_true(df, mask), source)
