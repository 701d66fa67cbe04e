"""The event-log input options that ``validate``, ``fit`` and ``benchmark fit`` share, and the
one function that turns them into a :func:`shopml.data.events.load_events` call.

Every option is checked here, before the first byte of the log is read.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from shopml.errors import ConfigError


class Format(str, Enum):
    events = "events"
    taobao = "taobao"
    otto = "otto"
    yoochoose_clicks = "yoochoose-clicks"
    diginetica_views = "diginetica-views"


class MissingUser(str, Enum):
    session = "session"
    drop = "drop"
    error = "error"


class BadPrices(str, Enum):
    drop = "drop"
    error = "error"


EVENTS_HELP = ("Event log: a file (CSV, Parquet, JSONL; .gz/.zst ok), a folder or glob of daily files, "
               "or a postgresql:// URI with --table or --query.")
FORMAT = typer.Option(Format.events, "--format", "-f", help="Layout of the log.")
MAP = typer.Option(None, "--map", help="Rename columns: theirs=user_id (repeatable, or comma-separated).")
EVENT_MAP = typer.Option(None, "--event-map", help="Map event names: pv=view, fav=none (drop).")
EVENT_TYPE = typer.Option(None, "--event-type", help="A constant event type (view, cart, purchase) for logs "
                                                     "without one, such as invoice lines.")
TS_FORMAT = typer.Option(None, "--timestamp-format", help="strftime format of the time column, when it is "
                                                          "none of ISO-8601, M/D/YYYY H:MM or unix time.")
MISSING_USER = typer.Option(None, "--missing-user", help="Rows without a user: 'session' (the session stands "
                            "in; the default when there is a session column), 'drop' (the default otherwise), "
                            "or 'error'.")
BAD_PRICES = typer.Option(BadPrices.drop, "--bad-prices", help="Prices of 0, negative, inf or NaN: drop the "
                          "rows (counted in the report) or stop with an error naming the row.")
EXCLUDE = typer.Option(None, "--exclude-items", help="Item codes to leave out (fees, postage): CODE,CODE or "
                       "a file with one code per line.")
TABLE = typer.Option(None, "--table", help="With a postgresql:// URI: the table to read.")
QUERY = typer.Option(None, "--query", help="With a postgresql:// URI: the SQL query to read.")


def pairs(values: list[str] | None, what: str) -> dict | None:
    """``["a=b", "c=d,e=f"]`` -> ``{"a": "b", ...}``; a value ``none``/empty drops (event maps).

    Example:
        >>> pairs(["a=b,c=none"], "--event-map")
        {'a': 'b', 'c': None}
    """
    if not values:
        return None
    out = {}
    for chunk in (p for v in values for p in v.split(",") if p.strip()):
        if "=" not in chunk:
            raise ConfigError(f"{what} expects NAME=VALUE pairs, got {chunk!r}")
        k, v = (s.strip() for s in chunk.split("=", 1))
        if not k:
            raise ConfigError(f"{what}: empty name in {chunk!r}")
        if k in out and out[k] != v:
            raise ConfigError(f"{what} maps {k!r} twice ({out[k]!r} and {v!r})")
        out[k] = None if v.lower() in ("", "none", "drop") else v
    return out


def exclude_list(value: str | None) -> list[str] | str | None:
    """``--exclude-items``: a readable file's path, or comma-separated codes."""
    if not value:
        return None
    p = Path(value)
    if p.is_file():
        return str(p)
    return [c.strip() for c in value.split(",") if c.strip()]


def check_events_path(events: str, table: str | None, query: str | None) -> None:
    """Refuse an unreadable input before any work: a missing path, or a database URI
    without exactly one of --table / --query (or a file with one)."""
    if events.startswith(("postgresql://", "postgres://")):
        if (table is None) == (query is None):
            raise ConfigError("a postgresql:// URI needs exactly one of --table or --query")
        return
    if table is not None or query is not None:
        raise ConfigError("--table and --query only go with a postgresql:// URI")
    if any(ch in events for ch in "*?["):
        import glob

        if not glob.glob(events):
            raise ConfigError(f"{events}: no file matches this pattern")
        return
    p = Path(events)
    if not p.exists():
        raise ConfigError(f"{events}: no such file or folder")


def load_kwargs(*, format, column_map, event_map, event_type, timestamp_format, missing_user, bad_prices,
                exclude_items, table, query) -> dict:
    """Keyword arguments of ``load_events`` from the CLI options (enums to strings)."""
    return {"format": _value(format), "column_map": pairs(column_map, "--map"),
            "event_map": pairs(event_map, "--event-map"), "event_type": event_type,
            "timestamp_format": timestamp_format, "missing_user": _value(missing_user),
            "bad_prices": _value(bad_prices), "exclude_items": exclude_list(exclude_items),
            "table": table, "query": query}


_INPUT_KEYS = ("format", "column_map", "event_map", "event_type", "timestamp_format", "missing_user",
               "bad_prices", "exclude_items", "table", "query")


def checked_load_kwargs(events: str, options: dict) -> dict:
    """Check the input path and return ``load_events`` kwargs from a command's own arguments
    (pass ``locals()``: every command declares the same input options under these names)."""
    check_events_path(events, options.get("table"), options.get("query"))
    return load_kwargs(**{k: options.get(k) for k in _INPUT_KEYS})


def _value(v):
    return v.value if isinstance(v, Enum) else v
