"""Validation errors name file, line and column; warnings are counted and located."""

from datetime import datetime, timezone

import polars as pl
import pytest

from shopml.data.events import load_events, read_events
from shopml.data.validate import validate_events
from shopml.errors import DataError

HEADER = "user_id,item_id,timestamp,event_type,price\n"
GOOD = "u1,i1,1700000000,view,2.5\nu1,i2,1700000060,cart,3.0\nu2,i1,1700000120,purchase,2.5\n"


def write(tmp_path, name, data):
    p = tmp_path / name
    (p.write_bytes if isinstance(data, bytes) else p.write_text)(data)
    return p


def error_of(path, **kw) -> DataError:
    with pytest.raises(DataError) as e:
        read_events(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return e.value


@pytest.mark.parametrize("name, text, row, column, words", [
    ("empty.csv", "", 1, None, "empty file"),
    ("header.csv", HEADER, 2, None, "no events"),
    ("missing.csv", "user_id,item_id,event_type\nu,i,view\n", 1, "timestamp", "missing required column"),
    ("ts.csv", HEADER + GOOD + "u3,i1,yesterday,view,1\n", 5, "timestamp", "unparsable timestamp"),
    ("iso.csv", HEADER + "u,i,2024-01-01T00:00:00Z,view,1\nu,i,2024-13-45,view,1\n", 3, "timestamp",
     "unparsable timestamp"),
    ("price.csv", HEADER + GOOD + "u3,i1,1700000000,view,cheap\n", 5, "price", "unparsable number"),
    ("neg.csv", HEADER + GOOD + "u3,i1,1700000000,view,-1\n", 5, "price", "bad price"),
    ("trunc.csv", HEADER + "u1,i1,1700000000,view,2\nu1,i1,17000\n" + GOOD, 3, None, "truncated line"),
    ("long.csv", HEADER + GOOD + "u1,i1,1700000000,view,2,extra\n", 5, None, "too many fields"),
    ("unknown.csv", HEADER + GOOD + "u1,i1,1700000000,wish,2\n", 5, "event_type", "unknown event type"),
    ("nouser.csv", HEADER + ",i1,1700000000,view,2\n", 2, "user_id", "missing value"),
    ("blankitem.csv", HEADER + GOOD + "u1,  ,1700000000,view,2\n", 5, "item_id", "missing value"),
])
def test_text_errors(tmp_path, name, text, row, column, words):
    # the policies that would otherwise drop bad prices and guest lines are set to raise
    err = error_of(write(tmp_path, name, text), bad_prices="error", missing_user="error")
    assert (err.row, err.column) == (row, column)
    assert words in str(err)


@pytest.mark.parametrize("data, row, words", [
    (b"\xff\xfe" + (HEADER + GOOD).encode("utf-16-le"), 1, "UTF-16"),
    ((HEADER + GOOD).encode("utf-16-le"), 1, "binary"),
    (bytes(range(256)) * 8, 1, "binary"),
    ((HEADER + GOOD).encode() + b"u9,\xe9t\xe9,1700000000,view,1\n", 5, "not UTF-8"),
])
def test_binary_and_encoding_errors(tmp_path, data, row, words):
    err = error_of(write(tmp_path, "bad.csv", data))
    assert err.row == row and words in str(err)


def test_jsonl_and_parquet_errors(tmp_path):
    jl = write(tmp_path, "e.jsonl", '{"user_id":"u","item_id":"i","timestamp":1700000000,"event_type":"view"}\n'
               '{"user_id":"u","item_id":"j","timest\n')
    err = error_of(jl)
    assert err.row == 2 and "truncated line" in str(err)
    bad = write(tmp_path, "e.parquet", b"PAR1 not really parquet")
    assert "Parquet" in str(error_of(bad))
    assert "not a Parquet file" in str(error_of(write(tmp_path, "x.parquet", b"garbage!")))
    pl.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": [1700000000],
                  "event_type": ["view"], "price": [-3.0]}).write_parquet(tmp_path / "neg.parquet")
    err = error_of(tmp_path / "neg.parquet", bad_prices="error")
    assert (err.row, err.column) == (1, "price")


def test_blank_lines_are_skipped_but_lines_still_count(tmp_path):
    p = write(tmp_path, "e.csv", HEADER + "u1,i1,1700000000,view,1\n\nu1,i1,bad,view,1\n")
    assert error_of(p).row == 4
    df, warnings = load_events(write(tmp_path, "ok.csv", HEADER + GOOD + "\n\n"))
    assert df.height == 3 and warnings[0]["kind"] == "blank_lines" and warnings[0]["count"] == 2


def test_warnings_counted_and_located(tmp_path):
    rows = ("u1,i1,1700000100,view,10\n"      # line 2
            "u1,i1,1700000000,view,10\n"      # line 3: earlier than line 2 -> out of order
            "u1,i1,1700000100,view,10\n"      # line 4: duplicate of line 2
            "u2,i2,1700000000,cart,11\n"      # line 5
            "u2,i1,1700000050,view,12\n"      # line 6
            "u3,i3,1700000000,view,9000\n"    # line 7: single-event user and item, price outlier
            "u2,i2,1700000060,view,10\n")
    df, warnings = load_events(write(tmp_path, "w.csv", HEADER + rows))
    w = {x["kind"]: x for x in warnings}
    assert (w["out_of_order"]["count"], w["out_of_order"]["first_row"]) == (1, 3)
    assert (w["duplicates"]["count"], w["duplicates"]["first_row"]) == (1, 4)
    assert w["single_event_users"]["count"] == 1 and w["single_event_items"]["count"] == 1
    assert (w["price_outliers"]["count"], w["price_outliers"]["first_row"]) == (1, 7)
    assert df.height == 7  # warnings never drop rows


def test_validate_events_on_a_frame():
    t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    df = pl.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": [t, t],
                       "event_type": ["view", "purchase"], "price": [1.0, -1.0]})
    with pytest.raises(DataError) as e:
        validate_events(df)
    assert (e.value.row, e.value.column) == (2, "price")
    kinds = [w["kind"] for w in validate_events(df.with_columns(pl.col("price").abs()))]
    assert kinds == ["single_event_items", "single_event_users"]
