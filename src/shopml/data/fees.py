"""Which items look like fees (postage, manual adjustments, bank charges) rather than products.

Fees are scored from the data, never from a list of one shop's codes. Three signals, each
in [0, 1], are summed:

* **code**: 1 when the item id has no digit (``POST``, ``M``, ``DOT``, ``BANK CHARGES``,
  ``AMAZONFEE``): product codes (SKUs, EANs) carry digits. Pseudonymized ids always do,
  so there the other two signals decide.
* **price spread**: ``(max - min) / median`` of the item's positive prices, scored as
  ``log10(1 + spread) / 3`` capped at 1: a product's unit price moves by tiers and
  markdowns (spread ~1), a fee's price is set per order (postage 452x its median here).
* **basket share**: the share of baskets holding the item, over the largest share of any
  item: postage rides along with a large share of orders. A basket is a ``session_id``
  where the log has one, else one user's events at one timestamp (an order).

Items scoring at least ``MIN_SCORE`` are listed, best first, at most ``TOP``. The list is a
prompt to look, not a verdict: popular products can score on basket share alone. Drop
confirmed fees with ``load_events(..., exclude_items=[...])``.

Example:
    >>> import polars as pl
    >>> from datetime import datetime, timezone
    >>> t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> df = pl.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["POST", "123", "POST", "456"],
    ...                    "timestamp": [t] * 4, "price": [5.0, 2.0, 40.0, 3.0]})
    >>> [f["item_id"] for f in fee_like_items(df)]
    ['POST']
"""

from __future__ import annotations

import math

import polars as pl

__all__ = ["fee_like_items", "MIN_SCORE", "TOP"]

MIN_SCORE = 1.0
TOP = 20


def fee_like_items(df: pl.DataFrame, *, min_score: float = MIN_SCORE, top: int = TOP) -> list[dict]:
    """``[{"item_id", "why", "score", "basket_share", "price_spread", "events"}, ...]``."""
    if df.height == 0:
        return []
    if "session_id" in df.columns and df["session_id"].null_count() < df.height:
        basket = pl.col("session_id")
    else:
        basket = pl.struct("user_id", "timestamp")
    n_baskets = df.select(basket.n_unique()).item()
    price = pl.col("price").filter(pl.col("price") > 0) if "price" in df.columns else pl.lit(None, pl.Float64)
    stats = df.group_by("item_id").agg(
        events=pl.len(), baskets=basket.n_unique(),
        spread=(price.max() - price.min()) / price.median(),
    ).with_columns(
        basket_share=pl.col("baskets") / n_baskets,
        no_digit=~pl.col("item_id").str.contains(r"\d"),
    )
    top_share = stats["basket_share"].max() or 1.0
    stats = stats.with_columns(
        s_code=pl.col("no_digit").cast(pl.Float64),
        s_spread=((pl.col("spread").fill_null(0.0) + 1).log10() / 3).clip(0.0, 1.0),
        s_share=pl.col("basket_share") / top_share,
    ).with_columns(score=pl.col("s_code") + pl.col("s_spread") + pl.col("s_share"))
    best = stats.filter(pl.col("score") >= min_score).sort(["score", "events"], descending=True).head(top)
    return [_entry(r, top_share) for r in best.iter_rows(named=True)]


def _entry(r: dict, top_share: float) -> dict:
    why = []
    if r["s_code"]:
        why.append("code has no digit")
    if r["s_spread"] >= 0.3:
        why.append(f"price ranges over {r['spread']:.3g}x its median")
    if r["s_share"] >= 0.3:
        why.append(f"in {r['basket_share']:.1%} of baskets (top item: {top_share:.1%})")
    spread = r["spread"]
    return {"item_id": r["item_id"], "why": "; ".join(why), "score": round(float(r["score"]), 3),
            "basket_share": float(r["basket_share"]),
            "price_spread": None if spread is None or not math.isfinite(spread) else float(spread),
            "events": int(r["events"])}
