"""quality_report numbers checked by hand on a tiny log."""

import json

import pytest

from shopml.data.events import load_events
from shopml.data.quality import quality_report

LOG = """user_id,item_id,timestamp,event_type,price
a,x,2024-01-01T00:00:00Z,view,10
a,x,2024-01-01T00:10:00Z,purchase,10
a,y,2024-01-01T02:00:00Z,purchase,20
a,x,2024-01-02T00:00:00Z,purchase,10
b,y,2024-01-01T00:00:00Z,view,20
b,y,2024-01-01T00:05:00Z,cart,20
b,y,2024-01-01T00:06:00Z,purchase,20
c,z,2024-01-03T00:00:00Z,view,30
"""


@pytest.fixture
def report(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text(LOG)
    df, warnings = load_events(p)
    return quality_report(df, warnings)


def test_counts_and_shares(report):
    assert (report["events"], report["users"], report["items"]) == (8, 3, 3)
    assert report["events_by_type"] == {"view": 3, "cart": 1, "purchase": 4}
    # a: 00:00+00:10 | 02:00 | next day -> 3 sessions; b: 1; c: 1
    assert (report["sessions"], report["sessions_from"]) == (5, "30-minute gap")
    assert report["sparsity"] == pytest.approx(1 - 4 / 9)  # 4 distinct (user, item) pairs of 3x3
    assert report["cold_user_share"] == pytest.approx(1 / 3)  # c
    assert report["cold_item_share"] == pytest.approx(1 / 3)  # z
    assert report["events_per_user"] == pytest.approx(8 / 3)


def test_time_price_and_repeat_purchases(report):
    assert report["timestamp_min"].startswith("2024-01-01T00:00:00")
    assert report["timestamp_max"].startswith("2024-01-03T00:00:00")
    assert report["span_days"] == pytest.approx(2.0)
    price = report["price"]
    assert (price["count"], price["min"], price["max"]) == (8, 10.0, 30.0)
    assert price["mean"] == pytest.approx(17.5) and price["median"] == pytest.approx(20.0)
    # a ordered at 3 distinct times, b once -> 1 of 2 purchasers repeats
    assert report["purchasers"] == 2 and report["repeat_purchase_rate"] == pytest.approx(0.5)
    # (a, x) bought twice; (a, y), (b, y) once
    assert report["repeat_item_purchase_rate"] == pytest.approx(1 / 3)
    assert {w["kind"] for w in report["warnings"]} == {"single_event_users", "single_event_items"}


def test_sessions_from_column_and_no_prices(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("user_id,item_id,timestamp,event_type,session_id\n"
                 "a,x,1700000000,view,s1\na,y,1700009000,view,s1\nb,x,1700000000,view,s2\n")
    df, _ = load_events(p)
    r = quality_report(df)
    assert (r["sessions"], r["sessions_from"]) == (2, "session_id")
    assert r["price"] is None and r["repeat_purchase_rate"] is None and r["purchasers"] == 0
    assert r["warnings"] == []
    json.dumps(r)  # the report is plain JSON-ready Python
