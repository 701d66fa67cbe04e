"""Read a PostgreSQL table or query into a Polars frame, through the ADBC driver.

:func:`read_sql` returns the raw table: column names as in the database, values typed
as below. Canonical names and types (``column_map``, UTC timestamps, pseudonyms) are the
event layer's job (:func:`shopml.data.events.load_events` with a ``postgresql://`` URI).

==============================  ======================================================
PostgreSQL type                 Polars dtype
==============================  ======================================================
text, varchar, char, name       String (``char(n)`` keeps its padding; the event
                                layer strips ids)
numeric / decimal               Float64 (``NaN`` stays NaN; more than ~15 significant
                                digits are rounded, as any float would)
double precision, real          Float64, Float32
smallint, integer, bigint       Int16, Int32, Int64
timestamp (without time zone)   Datetime("us"), naive: the event layer reads it as UTC,
                                exactly like naive text ``2010-12-01 08:26:00`` in a CSV
timestamp with time zone        Datetime("us", "UTC")
date, time, boolean, bytea      Date, Time, Boolean, Binary
uuid                            String, ``8-4-4-4-12`` lower-case hex
json, jsonb                     String (the JSON text)
interval, inet, timetz, ...     refused with DataError: cast them in ``query=``
==============================  ======================================================

So a table whose columns are all ``text`` (a CSV loaded as is) reads back exactly like
the CSV, and a typed table reads back like the CSV when ids are text: an id stored as a
number comes back as that number (``17850``), not the CSV's text (``17850.0``).

Rows of ``table=`` come in the order the table is stored, read from its first block.
PostgreSQL does not keep insertion order (a later row may fill a gap in an earlier page),
and the event layer keeps source order among events tied on (user, timestamp); where that
order matters, select it: ``query="SELECT * FROM events ORDER BY line_no"``.

Every read runs in a read-only session: ``query=`` can select anything the role may
read but cannot change the database.

Example:
    >>> df = read_sql("postgresql://shop:pw@db:5432/shop", table="public.events")  # doctest: +SKIP
    >>> df = read_sql("postgresql://shop:pw@db/shop",
    ...               query="SELECT * FROM events WHERE ts >= '2024-01-01'")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from shopml.errors import ConfigError, DataError

__all__ = ["read_sql", "quote_table", "redact_uri"]

log = logging.getLogger("shopml.data.sql")

_SCHEMES = ("postgresql://", "postgres://")
# Unquoted PostgreSQL identifiers (ASCII), at most 63 bytes (NAMEDATALEN - 1).
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
_TABLE_NOT_FOUND = "SQLSTATE: 42P01"


def read_sql(uri: str, *, table: str | None = None, query: str | None = None) -> pl.DataFrame:
    """Read one PostgreSQL ``table`` (``name`` or ``schema.name``) or the rows of ``query``.

    Give exactly one of ``table`` and ``query`` (else :class:`~shopml.errors.ConfigError`).
    A table name is matched exactly as stored in the catalog (unquoted names are stored
    lower case) and quoted, so it cannot carry SQL. Connection and query failures raise
    :class:`~shopml.errors.DataError` with one line that names the URI without its password.
    Column types: see the module docstring.

    Example:
        >>> read_sql("postgresql://shop:pw@127.0.0.1:5432/shop", table="events")  # doctest: +SKIP
        shape: (3, 4)
        ...
        >>> read_sql("mysql://x", table="t")
        Traceback (most recent call last):
        ...
        shopml.errors.ConfigError: read_sql needs a postgresql:// or postgres:// URI, got 'mysql://x'
    """
    if not isinstance(uri, str) or not uri.lower().startswith(_SCHEMES):
        raise ConfigError(f"read_sql needs a postgresql:// or postgres:// URI, got {redact_uri(str(uri))!r}")
    if (table is None) == (query is None):
        raise ConfigError("read_sql needs exactly one of table= and query=")
    sql = f"SELECT * FROM {quote_table(table)}" if table is not None else query
    if not isinstance(sql, str) or not sql.strip():
        raise ConfigError("read_sql: query= must be a non-empty SQL string")
    where = redact_uri(uri)
    arrow = _fetch(uri, sql, where, table)
    df = _to_polars(arrow, where)
    log.info("read %d rows x %d columns from %s", df.height, df.width, where)
    return df


def quote_table(name: str) -> str:
    """``name`` or ``schema.name`` as a quoted SQL identifier; anything else is refused.

    Example:
        >>> quote_table("shop.events")
        '"shop"."events"'
        >>> quote_table("events; DROP TABLE users")
        Traceback (most recent call last):
        ...
        shopml.errors.ConfigError: table name 'events; DROP TABLE users' must be name or schema.name, each a letter or _ followed by letters, digits, _ or $ (at most 63); use query= for other names
    """
    parts = name.split(".") if isinstance(name, str) else []
    if not 1 <= len(parts) <= 2 or not all(_IDENT.fullmatch(p) for p in parts):
        raise ConfigError(f"table name {name!r} must be name or schema.name, each a letter or _ followed by "
                          "letters, digits, _ or $ (at most 63); use query= for other names")
    # The pattern admits no double quote, so wrapping each part in quotes is the whole escape.
    return ".".join(f'"{p}"' for p in parts)


def redact_uri(uri: str) -> str:
    """``uri`` with its password (in the user part or ``?password=``) replaced by ``***``.

    Example:
        >>> redact_uri("postgresql://shop:s3cret@db:5432/shop?password=s3cret&sslmode=require")
        'postgresql://shop:***@db:5432/shop?password=***&sslmode=require'
    """
    try:
        parts = urlsplit(uri)
        netloc = parts.netloc
        if "@" in netloc:
            user, host = netloc.rsplit("@", 1)
            netloc = f"{user.split(':', 1)[0]}:***@{host}" if ":" in user else netloc
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)],
                          safe="*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:  # unparsable (e.g. a bad port): show only the scheme
        return uri.split("://", 1)[0] + "://***"


def _fetch(uri: str, sql: str, where: str, table: str | None) -> pa.Table:
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as dbapi

    step = "cannot connect"
    try:
        with dbapi.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            step = "query failed"
            # Read-only session: a query= typed by a user can read, never write.
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            if table is not None:
                # A table reads in stored order: from its first block (a concurrent scan of a
                # big table would otherwise start ours mid-table) and with no parallel workers.
                cur.execute("SET synchronize_seqscans = off")
                cur.execute("SET max_parallel_workers_per_gather = 0")
            cur.execute(sql)
            return cur.fetch_arrow_table()
    except adbc_driver_manager.Error as exc:
        msg = _one_line(str(exc), _secrets(uri))
        if table is not None and _TABLE_NOT_FOUND in msg:
            msg = (f"table {table!r} not found (names are matched exactly as stored; unquoted "
                   f"names are stored lower case): {msg}")
        raise DataError(f"{step}: {msg}", path=where) from None


def _secrets(uri: str) -> list[str]:
    try:
        parts = urlsplit(uri)
        found = [parts.password] + [v for k, v in parse_qsl(parts.query) if k.lower() == "password"]
    except ValueError:
        found = []
    found = [s for s in found if s]
    return sorted({*found, *map(unquote, found)}, key=len, reverse=True)


def _one_line(msg: str, secrets: list[str]) -> str:
    """libpq's message on one line: no LINE/caret context, no echo of the query."""
    keep = []
    for line in msg.splitlines():
        line = line.strip()
        if not line or line == "^" or line.startswith("LINE "):
            continue
        line = re.sub(r"^Query was: .*?(\. SQLSTATE: \w+)?$", r"\1", line).lstrip(". ")
        keep.append(line)
    text = re.sub(r"\s+", " ", " ".join(keep))
    # ADBC's status and step prefix ("IO: [libpq] Failed to connect: "): the caller names the step.
    text = re.sub(r"^[A-Z_]+: (\[libpq\] )?(Failed to (connect|prepare query|execute query '.*?')(: )?)?", "", text)
    for s in secrets:  # libpq does not echo passwords; this guards against one that does
        text = text.replace(s, "***")
    return text


def _to_polars(arrow: pa.Table, where: str) -> pl.DataFrame:
    names = arrow.schema.names
    dup = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if dup is not None:  # e.g. SELECT a.id, b.id: a frame holds one column per name
        raise DataError("the result has two columns of this name; alias one in the query", path=where, column=dup)
    return pl.DataFrame([_column(f, c.combine_chunks(), where) for f, c in zip(arrow.schema, arrow.columns)])


def _column(field: pa.Field, arr: pa.Array, where: str) -> pl.Series:
    pg_type = (field.metadata or {}).get(b"POSTGRESQL:type", b"?").decode()
    typ = field.type
    if isinstance(typ, pa.UuidType):
        hexed = pl.Series(field.name, arr.storage).bin.encode("hex")
        cuts = [(0, 8), (8, 4), (12, 4), (16, 4), (20, 12)]
        text = pl.select(pl.concat_str([hexed.str.slice(a, n) for a, n in cuts], separator="-")).to_series()
        return text.alias(field.name)
    if isinstance(typ, pa.BaseExtensionType):
        if not pa.types.is_string(typ.storage_type):
            raise _unsupported(field.name, pg_type, where)
        arr = arr.storage  # json, jsonb and numeric arrive as their text
        if pg_type == "numeric":
            arr = pc.cast(arr, pa.float64())
    elif pa.types.is_interval(typ):  # polars cannot import intervals (it panics)
        raise _unsupported(field.name, pg_type, where)
    return pl.Series(field.name, arr)


def _unsupported(name: str, pg_type: str, where: str) -> DataError:
    return DataError(f"PostgreSQL type {pg_type} is not supported; select it cast, e.g. "
                     f"query='SELECT ..., \"{name}\"::text AS \"{name}\" FROM ...'", path=where, column=name)
