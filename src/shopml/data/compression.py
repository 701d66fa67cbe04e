"""What kind of event file a path is (CSV, Parquet, JSON lines; plain, .gz or .zst) and how
to read its first bytes for the checks that run before parsing.

Polars decompresses gzip and zstd CSV/JSON itself, so only the sniffing (header, encoding,
and the slow paths that locate a bad line) needs the bytes here. gzip comes with Python;
zstd needs the ``zstandard`` package (or Python 3.14's ``compression.zstd``): without it a
``.zst`` file is still read, only its byte-level checks are skipped.

Example:
    >>> file_kind("2010-12-01.csv.gz")
    ('csv', 'gz')
    >>> file_kind("events.parquet")
    ('parquet', None)
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from shopml.errors import DataError

__all__ = ["file_kind", "open_binary", "read_head", "EVENT_SUFFIXES"]

_KINDS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "json", ".ndjson": "json",
          ".json": "json", ".csv": "csv", ".tsv": "csv"}
_COMPRESSED = {".gz": "gz", ".gzip": "gz", ".zst": "zst", ".zstd": "zst"}
#: Suffixes picked up when a folder is given (``.txt`` is left out: READMEs live beside data).
EVENT_SUFFIXES = tuple(_KINDS)


def file_kind(path) -> tuple[str, str | None]:
    """``(kind, compression)`` from the name: kind is csv, parquet or json (default csv)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    comp = _COMPRESSED.get(suffixes[-1]) if suffixes else None
    if comp is not None:
        suffixes = suffixes[:-1]
    return (_KINDS.get(suffixes[-1], "csv") if suffixes else "csv"), comp


def _zstd_reader(f):
    try:  # Python 3.14+
        from compression import zstd  # type: ignore[import-not-found]

        return zstd.ZstdFile(f)
    except ImportError:
        pass
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        return None
    return zstandard.ZstdDecompressor().stream_reader(f)


def open_binary(path: Path):
    """A binary stream of the file's decompressed bytes, or None when the compression cannot
    be read here (zstd without a decompressor). The caller closes it."""
    comp = file_kind(path)[1]
    if comp is None:
        return path.open("rb")
    if comp == "gz":
        return gzip.open(path, "rb")
    reader = _zstd_reader(path.open("rb"))
    return None if reader is None else io.BufferedReader(reader)


def read_head(path: Path, n: int) -> bytes | None:
    """The first ``n`` decompressed bytes (None: unreadable compression, see open_binary)."""
    f = open_binary(path)
    if f is None:
        return None
    with f:
        try:
            return f.read(n)
        except Exception as exc:  # noqa: BLE001 - gzip raises OSError, EOFError or zlib.error (no common base)
            raise DataError(f"corrupt compressed data ({type(exc).__name__})", path=path, row=1) from None
