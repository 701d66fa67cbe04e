"""Item features: the side-file formats, price buckets, encoding, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopml.data.features import ItemFeatures, read_item_features
from shopml.errors import DataError


def test_json_lists_and_field_dicts(tmp_path):
    p = tmp_path / "f.json"
    p.write_text(json.dumps({"4": [1, 2], "7": [2]}))
    f = read_item_features(p)
    assert f.tokens_of("4") == ["attr=1", "attr=2"] and f.n_tokens == 2
    p.write_text(json.dumps({"a": {"brand": "x", "cat": ["c1", "c2"]}, "b": {"brand": None}}))
    f = read_item_features(p)
    assert f.tokens_of("a") == ["brand=x", "cat=c1", "cat=c2"] and f.tokens_of("b") == []


def test_csv_and_parquet_bucket_prices(tmp_path):
    df = pl.DataFrame({"item_id": ["a", "b", "c", "d"], "category": ["x", "x", "y", None],
                       "price": [1.0, 2.0, 100.0, -1.0]})
    df.write_csv(tmp_path / "f.csv")
    df.write_parquet(tmp_path / "f.parquet")
    for name in ("f.csv", "f.parquet"):
        f = read_item_features(tmp_path / name, n_buckets=2)
        assert f.tokens_of("a")[0] == "category=x" and f.tokens_of("d") == []  # no category, bad price
        pa, pc = f.tokens_of("a")[1], f.tokens_of("c")[1]
        assert pa.startswith("price=q") and pa != pc


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 1e4), min_size=2, max_size=40), st.integers(2, 10))
def test_price_buckets_never_decrease_with_price(prices, n):
    df = pl.DataFrame({"item_id": [str(i) for i in range(len(prices))], "price": prices})
    f = ItemFeatures.from_frame(df, n_buckets=n)
    order = np.argsort(prices, kind="stable")
    buckets = [int(f.tokens_of(str(i))[0].split("=q")[1]) for i in order]
    assert buckets == sorted(buckets) and max(buckets) < n


def test_encode_csr_with_unknown_items_and_tokens():
    f = ItemFeatures.from_mapping({"a": ["1", "2"], "b": ["2"]})
    g = ItemFeatures(ItemFeatures.from_mapping({"c": ["2", "9"]}).item_tokens, f.vocabulary)  # model's vocabulary
    off, tok = g.encode(["c", "zzz"])
    assert off.tolist() == [0, 0, 1, 1] and tok.tolist() == [2]  # "attr=9" unknown to the vocabulary
    assert f.coverage(["a", "b", "zzz", "q"]) == 0.5


def test_from_events_uses_category_and_latest_positive_price():
    import datetime as dt

    t = [dt.datetime(2024, 1, d) for d in (1, 2, 3)]
    ev = pl.DataFrame({"item_id": ["a", "a", "b"], "timestamp": t, "category": ["x", "x", "y"],
                       "price": [1.0, 0.0, 5.0]})
    f = ItemFeatures.from_events(ev, n_buckets=2)
    assert f.tokens_of("a")[0] == "category=x" and len(f.tokens_of("a")) == 2  # the 0 price is skipped
    assert ItemFeatures.from_events(ev.select("item_id", "timestamp")) is None


@pytest.mark.parametrize("name,body,msg", [
    ("f.json", "{not json", "cannot read item features"),
    ("f.json", "[1, 2]", "must be an object"),
    ("f.txt", "x", "must be .json, .parquet or .csv"),
    ("f.csv", "sku,price\na,1\n", "need an 'item_id' column"),
])
def test_bad_files_give_one_line_errors(tmp_path, name, body, msg):
    p = tmp_path / name
    p.write_text(body)
    with pytest.raises(DataError, match=msg) as e:
        read_item_features(p)
    assert "\n" not in str(e.value) and name in str(e.value)
