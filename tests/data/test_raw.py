"""Raw formats: the real fixtures read with their published counts, and tiny inline files
of the same formats (the readers work on any file of the format)."""

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from shopml.data.events import read_events
from shopml.errors import ConfigError, DataError
from shopml.privacy import pseudonymize_one

FIX = "fixtures"


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def counts(df):
    return dict(df.group_by("event_type").len().iter_rows())


def test_taobao_fixture(real_file):
    df = read_events(real_file(FIX, "taobao-head", "UserBehavior_head4321.csv"), format="taobao")
    # 3,926 pv + 128 fav (fav -> view), 190 cart, 77 buy; 43 users
    assert counts(df) == {"view": 3926 + 128, "cart": 190, "purchase": 77}
    assert df["user_id"].n_unique() == 43 and df.height == 4321
    assert df["timestamp"].min().date().isoformat() == "2017-09-11"
    assert df["timestamp"].max().date().isoformat() == "2017-12-03"
    assert "category" in df.columns


def test_otto_fixture(real_file):
    df = read_events(real_file(FIX, "otto", "train_20sessions.jsonl"), format="otto")
    assert counts(df) == {"view": 800, "cart": 52, "purchase": 10}
    assert df["user_id"].n_unique() == 20 and df["session_id"].n_unique() == 20
    buyers = df.filter(pl.col("event_type") == "purchase")["user_id"].n_unique()
    assert buyers == 3
    assert df["timestamp"].min() == utc(2022, 7, 31, 22, 0, 0, 25000)  # ms precision kept


@pytest.mark.parametrize("name, clicks, sessions, items", [
    ("yoochoose-clicks-100k_train_full.txt", 70278, 17794, 2933),
    ("yoochoose-clicks-100k_test.txt", 13568, 3416, None),
])
def test_yoochoose_fixture(real_file, name, clicks, sessions, items):
    df = read_events(real_file(FIX, "yoochoose-clicks-100k", name), format="yoochoose-clicks")
    assert df.height == clicks and df["user_id"].n_unique() == sessions
    assert (df["user_id"] == df["session_id"]).all()  # the session is the user
    assert set(df["event_type"]) == {"view"}
    if items:
        assert df["item_id"].n_unique() == items


def test_diginetica_fixture(real_file):
    df = read_events(real_file(FIX, "diginetica-views-sample", "sample_train-item-views.csv"),
                     format="diginetica-views")
    assert df.height == 12391 and df["session_id"].n_unique() == 2986 and df["item_id"].n_unique() == 7139
    assert df["timestamp"].min().date().isoformat() == "2016-01-03"
    assert df["timestamp"].max().date().isoformat() == "2016-06-01"


def test_taobao_inline_and_fav_mapping(tmp_path):
    p = tmp_path / "ub.csv"
    p.write_text("9,100,5,pv,1511544070\n9,101,5,fav,1511544071\n9,100,5,buy,1511544072\n")
    df = read_events(p, format="taobao", pseudonymize=False)
    assert df["event_type"].to_list() == ["view", "view", "purchase"]
    assert df["timestamp"][0] == utc(2017, 11, 24, 17, 21, 10)
    assert read_events(p, format="taobao", event_map={"fav": "cart"})["event_type"][1] == "cart"
    assert read_events(p, format="taobao", event_map={"fav": None}).height == 2


def test_otto_inline(tmp_path):
    p = tmp_path / "o.jsonl"
    p.write_text('{"session":5,"events":[{"aid":1,"ts":1659304800000,"type":"clicks"},'
                 '{"aid":2,"ts":1659304860000,"type":"carts"}]}\n'
                 '{"session":6,"events":[{"aid":2,"ts":1659304800000,"type":"orders"}]}\n')
    df = read_events(p, format="otto")
    assert df.height == 3 and counts(df) == {"view": 1, "cart": 1, "purchase": 1}
    assert pseudonymize_one("5") in df["user_id"].to_list()
    assert "5" not in df["session_id"].to_list()  # sessions are users here: hashed too
    p.write_text('{"session":5,"events":[{"aid":1,"ts":1659304800000,"type":"clicks"}]}\n{"session":6}\n')
    with pytest.raises(DataError):
        read_events(p, format="otto")


def test_yoochoose_variants(tmp_path):
    tsv = tmp_path / "c.txt"
    tsv.write_text("1\t214536502\t1396860669.277\n1\t214536506\t1396860886.998\n")  # no header
    df = read_events(tsv, format="yoochoose-clicks", pseudonymize=False)
    assert df["user_id"].to_list() == ["1", "1"]
    assert df["timestamp"][0] == utc(2014, 4, 7, 8, 51, 9, 277000)
    dat = tmp_path / "yoochoose-clicks.dat"  # the original challenge file: comma, ISO times
    dat.write_text("1,2014-04-07T10:51:09.277Z,214536502,0\n1,2014-04-07T10:54:09.123Z,214536500,0\n")
    df = read_events(dat, format="yoochoose-clicks", pseudonymize=False)
    assert df["item_id"].to_list() == ["214536502", "214536500"]
    assert df["timestamp"][0] == utc(2014, 4, 7, 10, 51, 9, 277000)


def test_diginetica_na_user_becomes_session(tmp_path):
    p = tmp_path / "v.csv"
    p.write_text("session_id;user_id;item_id;timeframe;eventdate\n"
                 "1;NA;81766;526309;2016-05-09\n1;NA;31331;1000;2016-05-09\n2;77;9;5;2016-05-10")
    df = read_events(p, format="diginetica-views", pseudonymize=False)
    assert df["user_id"].to_list() == ["77", "session:1", "session:1"]
    assert df.filter(pl.col("user_id") == "session:1")["item_id"].to_list() == ["31331", "81766"]
    assert df["timestamp"][1] == utc(2016, 5, 9) + timedelta(milliseconds=1000)
    p.write_text("session_id;user_id;item_id;timeframe;eventdate\n1;NA;5;10;09/05/2016\n")
    with pytest.raises(DataError) as e:
        read_events(p, format="diginetica-views")
    assert (e.value.row, e.value.column) == (2, "eventdate")


def test_unknown_format():
    with pytest.raises(ConfigError):
        read_events("x.csv", format="amazon")
