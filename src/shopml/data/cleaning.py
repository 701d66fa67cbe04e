"""The rules that make a real shop's log usable, each counted in a warning.

They run in :func:`shopml.data.events.load_events` on typed, canonically named columns,
before validation, so a run never fails because a real log has the usual impurities:

``guest_lines`` / ``guest_lines_dropped`` (``missing_user``)
    Lines without a user id (guest checkout). ``"session"`` keeps them as their session's
    own user: ``user_id`` becomes the pseudonym of ``"session:" + session_id`` and the
    Boolean column ``guest`` is True on them (user-level jobs filter guests out); guest
    lines without a session id are dropped. ``"drop"`` drops them, ``"error"`` raises.
    The default (None) is ``"session"`` where a ``session_id`` column exists, else ``"drop"``.
``returns`` / ``zero_quantity``
    A row with a negative quantity, or a return-like event name (return, refund, cancel,
    ...), becomes event type ``return`` with quantity <= 0: minus the units returned, so
    ``sum(quantity)`` over purchases and returns nets them out. Quantity-0 lines are dropped.
``bad_prices`` (``bad_prices``)
    Prices that are 0, negative, infinite or NaN: ``"drop"`` (default) excludes the rows,
    ``"error"`` raises at the first. No inf/NaN reaches the canonical frame.
``excluded_items`` (``exclude_items``)
    Rows of the given raw item ids (a list, or a text file with one code per line or
    comma-separated; ``#`` starts a comment), e.g. the fees ``quality_report`` lists.

Example:
    >>> import polars as pl
    >>> df = pl.DataFrame({"user_id": ["a", None], "session_id": ["s1", "s2"], "event_type": ["purchase"] * 2,
    ...                    "item_id": ["x", "y"], "quantity": [2.0, -1.0], "price": [1.0, 1.0]})
    >>> out, _, w = clean_events(df, Source())
    >>> out["user_id"].to_list(), out["event_type"].to_list(), out["quantity"].to_list()
    (['a', 'session:s2'], ['purchase', 'return'], [2.0, -1.0])
    >>> [x["kind"] for x in w]
    ['guest_lines', 'returns']
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from shopml.data.validate import Source, first_true, warning_at, with_lines
from shopml.errors import ConfigError, DataError

__all__ = ["clean_events", "read_item_list", "MISSING_USER", "BAD_PRICES"]

MISSING_USER = ("session", "drop", "error")
BAD_PRICES = ("drop", "error")


def clean_events(df: pl.DataFrame, source: Source, *, missing_user: str | None = None,
                 bad_prices: str = "drop", exclude_items=None) -> tuple[pl.DataFrame, Source, list[dict]]:
    """Apply every rule of the module docstring; returns the frame, its source and warnings."""
    check_policies(missing_user, bad_prices)
    warnings: list[dict] = []
    # Returns last: their count is then the number of return rows the frame ends with.
    for step in (lambda d, s: _guests(d, s, missing_user), lambda d, s: _prices(d, s, bad_prices),
                 lambda d, s: _exclude(d, s, exclude_items), _returns):
        df, source, w = step(df, source)
        warnings += w
    if df.height == 0:
        raise DataError("no events left after excluding guests, zero quantities, bad prices and "
                        "excluded items (see the options of load_events)", path=source.path)
    return df, source, warnings


def check_policies(missing_user, bad_prices) -> None:
    if missing_user is not None and missing_user not in MISSING_USER:
        raise ConfigError(f"missing_user must be one of {', '.join(MISSING_USER)} or None, got {missing_user!r}")
    if bad_prices not in BAD_PRICES:
        raise ConfigError(f"bad_prices must be one of {', '.join(BAD_PRICES)}, got {bad_prices!r}")


def _drop(df, source, mask: pl.Expr) -> tuple[pl.DataFrame, Source]:
    df, source = with_lines(df, source)  # keep each row's line: later errors still point right
    return df.filter(~mask.fill_null(False)), source


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col) == "")


def _guests(df, source, policy) -> tuple[pl.DataFrame, Source, list[dict]]:
    guest = _blank("user_id")
    n = int(df.select(guest.sum()).item())
    if not n:
        return df, source, []
    idx = first_true(df, guest)
    has_session = "session_id" in df.columns
    policy = policy or ("session" if has_session else "drop")
    if policy == "error":
        raise source.error(df, idx, "user_id", "missing value (a guest line; missing_user='session' or "
                           "'drop' keeps them)")
    if policy == "session" and not has_session:
        raise ConfigError("missing_user='session' needs a session_id column (map one with column_map)")
    warnings = []
    kept = 0
    if policy == "session":
        found = guest & ~_blank("session_id")
        kept = int(df.select(found.sum()).item())
        df = df.with_columns(
            pl.when(found).then(pl.lit("session:") + pl.col("session_id")).otherwise(pl.col("user_id")).alias("user_id"),
            (found | (pl.col("guest").fill_null(False) if "guest" in df.columns else False)).alias("guest"))
    dropped = n - kept
    what = f"{kept:,} kept as their session's user (guest=True)" if policy == "session" else "dropped"
    if policy == "session" and dropped:
        what += f", {dropped:,} without a session id dropped"
    warnings.append(warning_at("guest_lines", n, f"{n:,} guest lines (no user id): {what}", df, idx, source))
    if dropped:
        warnings.append(warning_at("guest_lines_dropped", dropped, f"{dropped:,} guest lines dropped",
                                   df, first_true(df, _blank("user_id")), source))
        df, source = _drop(df, source, _blank("user_id"))
    return df, source, warnings


def _returns(df, source) -> tuple[pl.DataFrame, Source, list[dict]]:
    warnings = []
    ret = pl.col("event_type") == "return"
    if "quantity" in df.columns:
        zero = pl.col("quantity") == 0
        n_zero = int(df.select(zero.sum()).item())
        if n_zero:
            warnings.append(warning_at("zero_quantity", n_zero, f"{n_zero:,} lines with quantity 0 dropped",
                                       df, first_true(df, zero), source))
            df, source = _drop(df, source, zero)
        ret = ret | (pl.col("quantity") < 0).fill_null(False)
    n = int(df.select(ret.sum()).item())
    if not n:
        return df, source, warnings
    idx = first_true(df, ret)
    cols = [pl.when(ret).then(pl.lit("return")).otherwise(pl.col("event_type")).alias("event_type")]
    if "quantity" in df.columns:
        cols.append(pl.when(ret).then(-pl.col("quantity").abs()).otherwise(pl.col("quantity")).alias("quantity"))
    df = df.with_columns(cols)
    warnings.append(warning_at("returns", n, f"{n:,} returns or cancellations (negative quantity or a "
                               "return event) read as event type 'return' with quantity <= 0", df, idx, source))
    return df, source, warnings


def _prices(df, source, policy) -> tuple[pl.DataFrame, Source, list[dict]]:
    if "price" not in df.columns:
        return df, source, []
    p = pl.col("price")
    bad = p.is_not_null() & (~p.is_finite() | (p <= 0))
    row = df.select(n=bad.sum(), zero=(p == 0).sum(), neg=(p < 0).sum()).row(0)
    n, zero, neg = (int(x) for x in row)
    if not n:
        return df, source, []
    idx = first_true(df, bad)
    if policy == "error":
        raise source.error(df, idx, "price", f"bad price {df['price'][idx]} (zero, negative or not finite; "
                           "bad_prices='drop' excludes such rows)")
    msg = (f"{n:,} rows with a bad price dropped ({zero:,} zero, {neg:,} negative, "
           f"{n - zero - neg:,} infinite or NaN)")
    warning = warning_at("bad_prices", n, msg, df, idx, source)
    df, source = _drop(df, source, bad)
    return df, source, [warning]


def read_item_list(items) -> list[str]:
    """Raw item ids from a list or from a text file (one per line or comma-separated).

    Example:
        >>> read_item_list(["POST", 85123])
        ['POST', '85123']
    """
    if isinstance(items, (str, Path)):
        p = Path(items)
        if not p.is_file():
            raise ConfigError(f"exclude_items: no such file {str(items)!r} (pass a list for item ids)")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"unreadable item list: {exc}", path=p) from None
        lines = (line.split("#", 1)[0] for line in text.splitlines())
        return [c.strip() for line in lines for c in line.split(",") if c.strip()]
    return [str(i).strip() for i in items]


def _exclude(df, source, items) -> tuple[pl.DataFrame, Source, list[dict]]:
    if items is None:
        return df, source, []
    codes = read_item_list(items)
    hit = pl.col("item_id").is_in(codes)
    n = int(df.select(hit.sum()).item())
    if not n:
        return df, source, [warning_at("excluded_items", 0, f"none of the {len(codes)} excluded item ids "
                                       "occur in the log", None, None, source)]
    w = warning_at("excluded_items", n, f"{n:,} rows of {len(codes)} excluded item ids dropped",
                   df, first_true(df, hit), source)
    df, source = _drop(df, source, hit)
    return df, source, [w]
