"""read_events: schema, column and event mapping, timestamps, formats, pseudonyms, order."""

from datetime import datetime, timezone

import polars as pl
import pytest

from shopml.data.events import EVENT_SCHEMA, load_events, read_events
from shopml.errors import ConfigError, DataError
from shopml.privacy import pseudonymize_one


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


CANON = (
    "user_id,item_id,timestamp,event_type,price,session_id,quantity,category\n"
    "u2,i1,2024-01-01T00:00:10Z,view,2.5,s1,1,c\n"
    "u1,i2,2024-01-01T00:00:30Z,cart,3,s2,2,c\n"
    "u1,i1,2024-01-01T00:00:20Z,purchase,2.5,s2,1,d\n"
)


def test_canonical_csv_schema_order_and_pseudonyms(tmp_path):
    df = read_events(write(tmp_path, "e.csv", CANON))
    assert df.schema == pl.Schema({c: EVENT_SCHEMA[c] for c in ["user_id", "item_id", "timestamp",
                                                                 "event_type", "session_id", "price",
                                                                 "quantity", "category"]})
    assert df.height == 3
    assert set(df["user_id"]) == {pseudonymize_one("u1"), pseudonymize_one("u2")}
    assert "u1" not in df["user_id"].to_list()
    # sorted by (pseudonym, time): within u1 the 00:00:20 purchase comes first
    assert df["user_id"].to_list() == sorted(df["user_id"].to_list())
    u1 = df.filter(pl.col("user_id") == pseudonymize_one("u1"))
    assert u1["event_type"].to_list() == ["purchase", "cart"]
    assert u1["timestamp"].to_list() == [utc(2024, 1, 1, 0, 0, 20), utc(2024, 1, 1, 0, 0, 30)]


def test_parquet_jsonl_and_csv_read_the_same(tmp_path):
    from_csv = read_events(write(tmp_path, "e.csv", CANON), pseudonymize=False)
    raw = pl.read_csv(tmp_path / "e.csv", infer_schema=False)
    raw.write_parquet(tmp_path / "e.parquet")
    raw.write_ndjson(tmp_path / "e.jsonl")
    assert read_events(tmp_path / "e.parquet", pseudonymize=False).equals(from_csv)
    assert read_events(tmp_path / "e.jsonl", pseudonymize=False).equals(from_csv)


def test_typed_parquet_ints_and_naive_datetimes(tmp_path):
    pl.DataFrame({
        "user_id": [7, 7], "item_id": [1, 2],
        "timestamp": [datetime(2024, 3, 1, 12), datetime(2024, 3, 1, 13)],
        "event_type": ["VIEW", "Buy"], "price": [1, 2],
    }).write_parquet(tmp_path / "t.parquet")
    df = read_events(tmp_path / "t.parquet", pseudonymize=False)
    assert df["user_id"].to_list() == ["7", "7"] and df["item_id"].to_list() == ["1", "2"]
    assert df["timestamp"].to_list() == [utc(2024, 3, 1, 12), utc(2024, 3, 1, 13)]
    assert df["event_type"].to_list() == ["view", "purchase"]
    assert df["price"].dtype == pl.Float64


def test_column_map_for_a_foreign_schema(tmp_path):
    p = write(tmp_path, "f.csv", "visitor;sku;when;what\na;x;1700000000;pv\na;y;1700000100;orders\n")
    df = read_events(p, column_map={"visitor": "user_id", "sku": "item_id", "when": "timestamp",
                                    "what": "event_type"}, pseudonymize=False)
    assert df["item_id"].to_list() == ["x", "y"]
    assert df["event_type"].to_list() == ["view", "purchase"]
    with pytest.raises(ConfigError):
        read_events(p, column_map={"visitor": "customer"})


@pytest.mark.parametrize("names, expected", [
    (["pv", "clicks", "click", "Page_View", "fav"], "view"),
    (["cart", "carts", "add_to_cart", "AddToCart"], "cart"),
    (["buy", "orders", "order", "transaction", "purchase"], "purchase"),
])
def test_default_event_names(tmp_path, names, expected):
    rows = "".join(f"u,i{k},{1700000000 + k},{n}\n" for k, n in enumerate(names))
    df = read_events(write(tmp_path, "e.csv", "user_id,item_id,timestamp,event_type\n" + rows))
    assert df["event_type"].to_list() == [expected] * len(names)


def test_event_map_overrides_and_drops(tmp_path):
    p = write(tmp_path, "e.csv", "user_id,item_id,timestamp,event_type\n"
              "u,a,1700000000,wish\nu,b,1700000001,fav\nu,c,1700000002,refund\n")
    with pytest.raises(DataError) as e:
        read_events(p)
    assert (e.value.row, e.value.column) == (2, "event_type") and "'wish'" in str(e.value)
    df = read_events(p, event_map={"wish": "cart", "fav": "cart", "refund": None})
    assert df["item_id"].to_list() == ["a", "b"] and df["event_type"].to_list() == ["cart", "cart"]
    with pytest.raises(ConfigError):
        read_events(p, event_map={"wish": "basket"})


def test_iso_timestamp_variants_are_utc(tmp_path):
    stamps = ["2024-05-01T10:00:00Z", "2024-05-01T12:00:00+02:00", "2024-05-01 10:00:00",
              "2024-05-01", "2024-05-01T10:00:00.250", "2024-05-01 10:30"]
    rows = "".join(f"u{k},i,{s},view\n" for k, s in enumerate(stamps))
    df = read_events(write(tmp_path, "e.csv", "user_id,item_id,timestamp,event_type\n" + rows),
                     pseudonymize=False).sort("user_id")
    assert df["timestamp"].to_list() == [
        utc(2024, 5, 1, 10), utc(2024, 5, 1, 10), utc(2024, 5, 1, 10), utc(2024, 5, 1),
        utc(2024, 5, 1, 10, 0, 0, 250000), utc(2024, 5, 1, 10, 30)]


@pytest.mark.parametrize("value", ["1700000000", "1700000000000", "1700000000000000", "1700000000.0"])
def test_unix_epoch_unit_from_magnitude(tmp_path, value):
    p = write(tmp_path, "e.csv", f"user_id,item_id,timestamp,event_type\nu,i,{value},view\n")
    assert read_events(p)["timestamp"].to_list() == [utc(2023, 11, 14, 22, 13, 20)]


def test_load_events_returns_warnings_in_file_order(tmp_path):
    p = write(tmp_path, "e.csv", "user_id,item_id,timestamp,event_type\n"
              "u,a,1700000100,view\nu,b,1700000000,view\n")
    df, warnings = load_events(p)
    kinds = {w["kind"]: w for w in warnings}
    assert kinds["out_of_order"]["count"] == 1 and kinds["out_of_order"]["first_row"] == 3
    assert df["item_id"].to_list() == ["b", "a"]
