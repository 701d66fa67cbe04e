"""The UCI Online Retail daily exports read as shipped (245 CSVs, 370,931 invoice lines)."""

import polars as pl
import pytest

from shopml.data.events import load_events
from shopml.data.quality import quality_report

MAP = {"InvoiceDate": "timestamp", "CustomerID": "user_id", "StockCode": "item_id", "UnitPrice": "price",
       "Quantity": "quantity", "InvoiceNo": "session_id"}


@pytest.mark.real_data
def test_online_retail_by_day_reads_with_counted_warnings(real_file):
    folder = real_file("online-retail", "by-day")
    df, warnings = load_events(folder, column_map=MAP, event_type="purchase")
    w = {x["kind"]: x for x in warnings}
    # every line is accounted for: kept + bad prices (no zero quantities in this log)
    assert df.height + w["bad_prices"]["count"] == 370_931 and "zero_quantity" not in w
    assert w["guest_lines"]["count"] > 90_000 and "guest_lines_dropped" not in w
    # guest lines are kept as their invoice's user; only bad prices remove some of them
    assert w["guest_lines"]["count"] - w["bad_prices"]["count"] <= df["guest"].sum() < w["guest_lines"]["count"]
    returns = df.filter(pl.col("event_type") == "return")
    assert returns.height == w["returns"]["count"] > 0 and (returns["quantity"] < 0).all()
    assert df["price"].min() > 0 and df["timestamp"].min().year == 2010
    r = quality_report(df, warnings)
    fees = {f["item_id"] for f in r["fee_like_items"]}
    assert {"POST", "M", "DOT"} <= fees
    assert r["excluded"]["bad_prices"] == w["bad_prices"]["count"]


@pytest.mark.real_data
def test_descriptions_become_shared_word_features(real_file):
    from shopml.data.features import ItemFeatures

    folder = real_file("online-retail", "by-day")
    df, _ = load_events(folder, column_map={**MAP, "Description": "description"}, event_type="purchase")
    f = ItemFeatures.from_events(df)
    items = df["item_id"].unique().to_list()
    assert f.coverage(items) > 0.9  # nearly every product name shares a word with another
    # two heart-shaped products share the word token; a price bucket comes with every priced item
    assert "word=HEART" in f.vocabulary and sum("word=HEART" in f.tokens_of(i) for i in items) > 20
    assert all(t.startswith(("word=", "price=q")) for t in f.vocabulary)
