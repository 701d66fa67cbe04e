"""Where events come from: one file, a folder or glob of daily exports, a list, or PostgreSQL.

:func:`expand_paths` turns the ``path`` given to ``read_events`` into files:

* a file: itself (CSV, Parquet or JSON lines, each optionally ``.gz`` or ``.zst``);
* a folder: its event files (``.csv``, ``.tsv``, ``.parquet``, ``.pq``, ``.jsonl``,
  ``.ndjson``, ``.json``, optionally compressed), hidden files and others such as
  ``README.txt`` left out, in sorted name order (daily exports named by date read in time order);
* a glob (``exports/2024-*.csv.gz``): the matching files in sorted name order;
* a list or tuple of any of these: concatenated in the order given.

:func:`scan_files` reads several files of one kind as one frame, lazily (``scan_csv`` /
``scan_parquet`` / ``scan_ndjson`` concatenated and collected once, so Polars reads them in
parallel). Each file keeps its own header; every file must have the first file's columns
(in any order). Each row carries its file (``_file``) and line (``_line``), so an error
names both.

A ``postgresql://`` (or ``postgres://``) URI is read by :func:`shopml.data.sql.read_sql`
with ``table=`` or ``query=``; error messages show the URI without its password.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.csv", "a.csv.gz", "README.txt"):
    ...     _ = (d / name).write_bytes(b"")
    >>> [p.name for p in expand_paths(d)]
    ['a.csv.gz', 'b.csv']
"""

from __future__ import annotations

import glob
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import polars as pl

from shopml.data.compression import EVENT_SUFFIXES, file_kind
from shopml.data.validate import Source, check_text_file
from shopml.errors import ConfigError, DataError

__all__ = ["expand_paths", "header_renames", "is_sql_uri", "read_sql_source", "scan_files", "sniff_separator"]

_SQL = re.compile(r"^postgres(ql)?(\+[\w]+)?://", re.IGNORECASE)
_GLOB = re.compile(r"[*?\[]")


def is_sql_uri(path) -> bool:
    """True for ``postgresql://...`` / ``postgres://...`` strings."""
    return isinstance(path, str) and bool(_SQL.match(path))


def redact(uri: str) -> str:
    """The URI without its password, safe to print in an error."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def read_sql_source(uri: str, table: str | None, query: str | None) -> tuple[pl.DataFrame, Source]:
    """Dispatch to :func:`shopml.data.sql.read_sql` (imported only when a URI is given)."""
    if (table is None) == (query is None):
        raise ConfigError("PostgreSQL input needs exactly one of table= or query=")
    from shopml.data.sql import read_sql
    df = read_sql(uri, table=table, query=query)
    where = redact(uri) + (f" table {table}" if table else " query")
    return df, Source(where, first_line=1)


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and _is_event_file(p))
    if not files:
        raise DataError(f"no event files ({', '.join(EVENT_SUFFIXES)}, optionally .gz/.zst) in the folder",
                        path=folder)
    return files


def _is_event_file(p: Path) -> bool:
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and file_kind(p)[1] is not None:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in EVENT_SUFFIXES


def expand_paths(path) -> list[Path]:
    """The files ``path`` stands for (see the module docstring); never empty."""
    if isinstance(path, (list, tuple)):
        if not path:
            raise ConfigError("an empty list of event files")
        return [f for p in path for f in expand_paths(p)]
    p = Path(path)
    if p.is_dir():
        return _folder_files(p)
    if not p.exists() and _GLOB.search(str(path)):
        files = sorted(Path(f) for f in glob.glob(str(path)) if Path(f).is_file())
        if not files:
            raise DataError("no files match this pattern", path=path)
        return files
    return [p]


# ---------------------------------------------------------------------------------------
# Several files as one frame


def sniff_separator(path: Path, header: str) -> str:
    """Tab for ``.tsv`` files, else the most frequent of ``,`` tab ``;`` ``|`` in the header."""
    if ".tsv" in [s.lower() for s in path.suffixes[-2:]]:
        return "\t"
    return max([",", "\t", ";", "|"], key=header.count)


def _scan_one(path: Path, kind: str, header: str | None) -> pl.LazyFrame:
    if kind == "parquet":
        return pl.scan_parquet(path)
    if kind == "json":
        return pl.scan_ndjson(path, infer_schema_length=None)
    lf = pl.scan_csv(path, separator=sniff_separator(path, header or ""), has_header=True,
                     infer_schema=False, truncate_ragged_lines=False, raise_if_empty=False)
    return lf.rename(header_renames(path, lf.collect_schema().names()))


def header_renames(path: Path, names: list[str]) -> dict:
    """Renames that strip padding and a byte-order mark from header names; two names equal
    after stripping are a DataError (they would be two columns with one name)."""
    clean = [c.strip().lstrip("\ufeff").strip() for c in names]
    seen = set()
    for c in clean:
        if c in seen:
            raise DataError(f"duplicate column name {c!r} in the header", path=path, row=1)
        seen.add(c)
    return {a: b for a, b in zip(names, clean) if a != b}


def scan_files(files: list[Path], read_header) -> tuple[pl.DataFrame, Source, dict]:
    """Read ``files`` (one kind) into one frame with ``_file``/``_line`` columns.

    ``read_header(path) -> str`` returns a CSV file's first line (after the byte checks).
    Also returns, for CSV, ``{last column: [file indices]}`` for the truncated-line check.
    """
    kinds = {file_kind(f)[0] for f in files}
    if len(kinds) > 1:
        raise ConfigError(f"event files of one kind please, got {', '.join(sorted(kinds))} files mixed")
    kind = kinds.pop()
    first_line = 2 if kind == "csv" else 1
    frames, columns, last_cols = [], None, {}
    for i, f in enumerate(files):
        header = None
        if kind == "csv":
            check_text_file(f)
            header = read_header(f)
        elif not f.exists():
            raise DataError("file not found", path=f)
        try:
            lf = _scan_one(f, kind, header)
            names = lf.collect_schema().names()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataError(f"unreadable file: {_first_line(exc)}", path=f, row=1) from None
        if columns is None:
            columns = names
        elif set(names) != set(columns):
            missing, extra = sorted(set(columns) - set(names)), sorted(set(names) - set(columns))
            raise DataError(f"header differs from {files[0].name}'s: missing {missing}, extra {extra}",
                            path=f, row=1 if kind == "csv" else None)
        last_cols.setdefault(names[-1], []).append(i)
        frames.append(lf.select(columns).with_row_index("_line", offset=first_line)
                      .with_columns(pl.lit(i, dtype=pl.UInt32).alias("_file")))
    how = "vertical" if kind == "csv" else "vertical_relaxed"
    df = pl.concat(frames, how=how).collect()
    source = Source(str(files[0]), first_line, line_col="_line", files=tuple(map(str, files)), file_col="_file")
    return df, source, (last_cols if kind == "csv" else {})


def _first_line(exc: Exception) -> str:
    msg = str(exc).strip()
    return msg.splitlines()[0] if msg else type(exc).__name__
