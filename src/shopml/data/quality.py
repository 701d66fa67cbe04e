"""The data-quality report of an event log (what ``shopml validate`` prints).

Definitions used by :func:`quality_report`:

* **sessions**: distinct ``session_id`` values when the column exists, else sessions cut by
  a 30-minute inactivity gap per user (``sessions_from`` says which);
* **sparsity**: ``1 - distinct (user, item) pairs / (users * items)``;
* **cold users / items**: those with a single event; shares are of all users / items;
* **repeat-purchase rate**: among users with a purchase, the share who purchased at two or
  more distinct timestamps (several items bought at one timestamp are one order);
  ``repeat_item_purchase_rate`` is the share of purchased (user, item) pairs bought at two
  or more distinct timestamps;
* **price**: statistics over non-null prices of all events;
* **events_by_type**: view, cart and purchase always, ``return`` only when there are returns;
* **fee_like_items**: items most likely to be fees rather than products, scored from the
  data (:mod:`shopml.data.fees`): ``{item_id, why, score, basket_share, price_spread, events}``;
* **excluded**: counts from the warnings of what loading dropped or changed, by reason.
  Dropped rows: ``guest_lines_dropped``, ``zero_quantity``, ``bad_prices``,
  ``excluded_items``, ``dropped_events`` (event types mapped to None), ``blank_lines``.
  Kept but marked: ``guest_lines`` (all guest lines, kept as their session unless dropped),
  ``returns`` (rows read as event type ``return``), ``duplicates`` (kept, flagged).

Example:
    >>> import polars as pl
    >>> from datetime import datetime, timezone
    >>> t = [datetime(2024, 1, 1, h, tzinfo=timezone.utc) for h in (0, 1, 5)]
    >>> df = pl.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"],
    ...                    "timestamp": t, "event_type": ["view", "purchase", "view"]})
    >>> r = quality_report(df)
    >>> r["users"], r["items"], r["sessions"], r["cold_user_share"], r["sparsity"]
    (2, 2, 3, 0.5, 0.25)
"""

from __future__ import annotations

import math
from datetime import timedelta

import polars as pl

from shopml.data.fees import fee_like_items
from shopml.data.validate import EVENT_TYPES

__all__ = ["quality_report", "SESSION_GAP", "EXCLUDED_KINDS"]

SESSION_GAP = timedelta(minutes=30)
#: Warning kinds counted in ``report["excluded"]`` (always present, 0 when none).
EXCLUDED_KINDS = ("guest_lines", "guest_lines_dropped", "returns", "zero_quantity", "bad_prices",
                  "excluded_items", "dropped_events", "blank_lines", "duplicates")


def quality_report(df: pl.DataFrame, warnings=()) -> dict:
    """Counts, sparsity, cold shares, time range, prices, repeat purchases and fee-like items
    of a canonical event frame, plus the ``warnings`` of loading and what they excluded.
    Values are plain Python (JSON-ready, no inf/NaN)."""
    n = df.height
    users = df["user_id"].n_unique()
    items = df["item_id"].n_unique()
    pairs = df.select(pl.struct("user_id", "item_id").n_unique()).item() if n else 0
    by_type = dict(df.group_by("event_type").len().iter_rows())
    sessions, sessions_from = _sessions(df)
    report = {
        "events": n,
        "users": users,
        "items": items,
        "sessions": sessions,
        "sessions_from": sessions_from,
        "events_by_type": {t: int(by_type.get(t, 0)) for t in EVENT_TYPES
                           if t != "return" or by_type.get(t, 0)},
        "events_per_user": n / users if users else 0.0,
        "sparsity": 1.0 - pairs / (users * items) if users and items else 0.0,
        "cold_user_share": _single_share(df, "user_id"),
        "cold_item_share": _single_share(df, "item_id"),
        **_time_range(df),
        "price": _price_stats(df),
        **_repeat_purchases(df),
        "fee_like_items": fee_like_items(df),
        "excluded": _excluded(warnings),
        "warnings": list(warnings),
    }
    return report


def _excluded(warnings) -> dict:
    out = dict.fromkeys(EXCLUDED_KINDS, 0)
    for w in warnings:
        if w["kind"] in out:
            out[w["kind"]] += int(w["count"])
    return out


def _single_share(df: pl.DataFrame, col: str) -> float:
    counts = df.group_by(col).len()["len"]
    return float((counts == 1).sum() / counts.len()) if counts.len() else 0.0


def _sessions(df: pl.DataFrame) -> tuple[int, str]:
    if "session_id" in df.columns and df["session_id"].null_count() < df.height:
        return int(df["session_id"].drop_nulls().n_unique()), "session_id"
    s = df.select("user_id", "timestamp").sort("user_id", "timestamp")
    new = (pl.col("user_id") != pl.col("user_id").shift(1)) | (
        pl.col("timestamp") - pl.col("timestamp").shift(1) > SESSION_GAP
    )
    return int(s.select(new.fill_null(True).sum()).item()), f"{int(SESSION_GAP.total_seconds() // 60)}-minute gap"


def _time_range(df: pl.DataFrame) -> dict:
    lo, hi = df["timestamp"].min(), df["timestamp"].max()
    if lo is None:
        return {"timestamp_min": None, "timestamp_max": None, "span_days": 0.0}
    return {"timestamp_min": lo.isoformat(), "timestamp_max": hi.isoformat(),
            "span_days": (hi - lo).total_seconds() / 86400.0}


def _price_stats(df: pl.DataFrame) -> dict | None:
    if "price" not in df.columns or df["price"].null_count() == df.height:
        return None
    p = pl.col("price").drop_nulls()
    row = df.select(
        count=p.len(), min=p.min(), max=p.max(), mean=p.mean(), median=p.median(), std=p.std(),
        p05=p.quantile(0.05), p95=p.quantile(0.95),
    ).row(0, named=True)
    # NaN (std of one price) is not JSON: reported as None, like a missing value.
    return {k: (int(v) if k == "count" else None if v is None or not math.isfinite(v) else float(v))
            for k, v in row.items()}


def _repeat_purchases(df: pl.DataFrame) -> dict:
    buys = df.filter(pl.col("event_type") == "purchase")
    if buys.height == 0:
        return {"purchasers": 0, "repeat_purchase_rate": None, "repeat_item_purchase_rate": None}
    orders = buys.group_by("user_id").agg(pl.col("timestamp").n_unique().alias("n"))["n"]
    pair_orders = buys.group_by("user_id", "item_id").agg(pl.col("timestamp").n_unique().alias("n"))["n"]
    return {
        "purchasers": orders.len(),
        "repeat_purchase_rate": float((orders >= 2).mean()),
        "repeat_item_purchase_rate": float((pair_orders >= 2).mean()),
    }
