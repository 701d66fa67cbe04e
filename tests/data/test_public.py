"""Public dataset readers: published counts on the real files, and bad lines on small copies."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shopml.data.public import (
    read_beauty,
    read_cdnow,
    read_oj,
    read_online_shoppers,
    read_prefix_targets,
    read_session_split,
    read_sessions,
    read_table,
)
from shopml.data.sequences import leave_one_out
from shopml.errors import DataError

# ------------------------------------------------------------------------- real files


@pytest.mark.real_data
def test_beauty_published_counts(real_file):
    s = read_beauty(real_file("amazon-beauty", "Beauty.txt"))
    assert (s.n_users, s.n_items, len(s.items)) == (22_363, 12_101, 198_502)
    assert s.item_map.decode([1, 12_101]) == ["1", "12101"]  # index == raw id
    assert len(set(s.user_ids)) == 22_363 and all(len(u) == 32 for u in s.user_ids[:5])
    train, valid, test = leave_one_out(s)
    assert (valid > 0).all() and (test > 0).all() and len(train.items) == 198_502 - 2 * 22_363


@pytest.mark.real_data
def test_yoochoose_published_counts(real_file):
    split = read_session_split(
        real_file("yoochoose-1-64", "train_sessions.txt"), real_file("yoochoose-1-64", "test_prefix_target.tsv")
    )
    assert split.n_train_cases == 369_859
    assert split.n_test_cases == 55_898
    assert len(split.item_map) == 37_483
    assert split.train_sessions.n_users == 116_167
    assert (split.test_targets > 0).all() and split.test_prefixes.n_users == 55_898


@pytest.mark.real_data
def test_online_shoppers_published_counts(real_file):
    x, y = read_online_shoppers(real_file("online-shoppers", "online_shoppers_intention.csv"))
    assert x.shape == (12_330, 17) and int(y.sum()) == 1_908
    assert "Revenue" not in x.columns and x["Weekend"].dtype == pl.Boolean


@pytest.mark.real_data
def test_cdnow_published_counts(real_file):
    master = read_cdnow(real_file("cdnow", "CDNOW_master.txt"))
    assert master.height == 69_659 and master["customer_id"].n_unique() == 23_570
    assert str(master["date"].min()) == "1997-01-01" and str(master["date"].max()) == "1998-06-30"
    sample = read_cdnow(real_file("cdnow", "CDNOW_sample.txt"))
    assert sample.height == 6_919 and sample["customer_id"].n_unique() == 2_357


@pytest.mark.real_data
def test_oj_published_counts(real_file):
    oj = read_oj(
        real_file("dominicks-oj", "oj_store_week_3brands.csv"), real_file("dominicks-oj", "orangeJuice_storedemo.csv")
    )
    assert oj.height == 28_947 and oj["store"].n_unique() == 83 and oj["brand"].n_unique() == 3
    assert oj["income"].null_count() == 0
    bds = read_oj(real_file("dominicks-oj", "bds_oj.csv"))
    assert bds.height == 28_947
    assert np.allclose(np.exp(oj["logmove"].to_numpy()), bds["sales"].to_numpy(), rtol=1e-9)


# ---------------------------------------------------------------- formats and bad lines


def write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return p


def test_beauty_format_with_raw_string_ids(tmp_path):
    s = read_beauty(write(tmp_path, "s.txt", "alice b a\r\nbob  a c\n"), pseudonymize=False)
    assert s.user_ids == ["alice", "bob"] and s.item_map.to_list() == ["a", "b", "c"]
    assert [s[0].tolist(), s[1].tolist()] == [[2, 1], [1, 3]]


@pytest.mark.parametrize(
    ("text", "row"),
    [("1 2 3\n2\n", 2), ("1 2\n2 3\n1 4\n", 3), ("", None), (b"1 2\n\xff\xfe 3\n", 2), (b"1 2\x00\n", 1)],
)
def test_beauty_bad_lines(tmp_path, text, row):
    p = write(tmp_path, "b.txt", text)
    with pytest.raises(DataError) as e:
        read_beauty(p)
    assert str(p) in str(e.value) and e.value.row == row


def test_session_files_as_raw_id_lists(tmp_path):
    assert read_sessions(write(tmp_path, "tr.txt", "1 2 3\r\n4\t1\n")) == [["1", "2", "3"], ["4", "1"]]
    assert read_prefix_targets(write(tmp_path, "te.tsv", "1 2\t3\n4\t 1\n")) == ([["1", "2"], ["4"]], ["3", "1"])


def test_session_split_indexed_and_unknown_test_items(tmp_path):
    split = read_session_split(write(tmp_path, "tr.txt", "2 3\n"), write(tmp_path, "te.tsv", "2 5\t3\n"))
    assert len(split.item_map) == 5 and split.test_prefixes.items.tolist() == [2, 5]  # index == raw id
    # Leading zeros: not indexed, so the map holds the training ids; unknown test items drop or get 0.
    train = write(tmp_path, "tr0.txt", "01 02 03\n02 01\n")
    test = write(tmp_path, "te0.tsv", "01 02\t03\n09\t01\n01\t07\n")
    split = read_session_split(train, test)
    assert split.n_train_cases == 3 and split.n_test_cases == 3
    assert split.item_map.to_list() == ["01", "02", "03"]
    assert split.test_targets.tolist() == [3, 1, 0]
    assert split.test_prefixes.lengths.tolist() == [2, 0, 1]  # unknown prefix item 09 dropped


@pytest.mark.parametrize(
    ("line", "column"),
    [("1 2 3\n", "target"), ("1 2\t3\t4\n", "target"), ("1 2\t\n", "target"), ("1 2\t3 4\n", "target"),
     ("\t3\n", "prefix"), ("\n", "target"), ("1 x2\t3\n", "prefix"), ("1\tabc\n", "target")],
)
def test_session_split_bad_test_line(tmp_path, line, column):
    test = write(tmp_path, "te.tsv", "1\t2\n" + line + "1\tzz\n")  # only the first bad line is reported
    for read in (read_prefix_targets, lambda p: read_session_split(write(tmp_path, "tr.txt", "1 2 3\n"), p)):
        with pytest.raises(DataError) as e:
            read(test)
        assert (e.value.row, e.value.column) == (2, column) and str(test) in str(e.value)


@pytest.mark.parametrize("text", ["1 2 3\n4 x5 6\n", "1 2 3\n\n4 5\n", "1 2\n3 -4\n"])
def test_sessions_bad_line(tmp_path, text):
    p = write(tmp_path, "train.txt", text)
    with pytest.raises(DataError, match=r"train.txt: row 2, column 'session'"):
        read_sessions(p)
    with pytest.raises(DataError, match="row 2"):
        read_session_split(p, write(tmp_path, "te.tsv", "1\t2\n"))


def test_sessions_not_utf8(tmp_path):
    with pytest.raises(DataError, match="UTF-8|NUL"):
        read_sessions(write(tmp_path, "u.txt", "1 2 3\n", encoding="utf-16"))


def test_online_shoppers_semicolon_and_bad_values(tmp_path):
    header = ("Administrative;Administrative_Duration;Informational;Informational_Duration;ProductRelated;"
              "ProductRelated_Duration;BounceRates;ExitRates;PageValues;SpecialDay;Month;OperatingSystems;"
              "Browser;Region;TrafficType;VisitorType;Weekend;Revenue\r\n")
    good = "0;0;0;0;1;0;0.2;0.2;0;0;Feb;1;1;1;1;Returning_Visitor;FALSE;TRUE\r\n"
    x, y = read_online_shoppers(write(tmp_path, "ok.csv", header + good * 2))
    assert x.shape == (2, 17) and y.tolist() == [1, 1]
    with pytest.raises(DataError) as e:
        read_online_shoppers(write(tmp_path, "bad.csv", header + good + good.replace("0.2;0.2", "0.2;abc")))
    assert (e.value.row, e.value.column) == (3, "ExitRates")
    with pytest.raises(DataError) as e:
        read_online_shoppers(write(tmp_path, "lab.csv", header + good.replace("TRUE", "maybe")))
    assert (e.value.row, e.value.column) == (2, "Revenue")
    with pytest.raises(DataError, match="PageValues"):
        read_online_shoppers(write(tmp_path, "col.csv", header.replace("PageValues", "PV") + good))


@pytest.mark.real_data
def test_online_shoppers_semicolon_copy_of_the_real_file(tmp_path, real_file):
    src = real_file("online-shoppers", "online_shoppers_intention.csv").read_text().splitlines()
    p = tmp_path / "semi.csv"
    p.write_text("\n".join(line.replace(",", ";") for line in src[:50]) + "\n")
    X, _ = read_online_shoppers(p)
    assert X.height == 49
    bad = tmp_path / "bad.csv"
    rows = src[:5]
    rows[3] = "x" + rows[3]
    bad.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="row 4"):
        read_online_shoppers(bad)


def test_cdnow_bad_lines(tmp_path):
    ok = write(tmp_path, "c.txt", " 00001 19970101  1   11.77\n 00002 19970112  2   12.00\n")
    assert read_cdnow(ok)["cds"].to_list() == [1, 2]
    with pytest.raises(DataError) as e:
        read_cdnow(write(tmp_path, "d.txt", "id date cds usd\n1 19970101 1 1.0\n2 19971301 1 1.0\n"))
    assert (e.value.row, e.value.column) == (3, "date")
    with pytest.raises(DataError) as e:
        read_cdnow(write(tmp_path, "t.txt", "1 19970101 1 1.0\n2 19970101 1\n"))
    assert e.value.row == 2
    with pytest.raises(DataError) as e:
        read_cdnow(write(tmp_path, "n.txt", "1 19970101 1 1.0\n2 19970101 x 1.0\n"))
    assert (e.value.row, e.value.column) == (2, "cds")


def test_oj_bad_values(tmp_path):
    with pytest.raises(DataError) as e:
        read_oj(write(tmp_path, "o.csv", "sales,price,brand,feat\n10,2.5,a,0\n12,-1,a,0\n"))
    assert (e.value.row, e.value.column) == (3, "price")
    with pytest.raises(DataError) as e:
        read_oj(write(tmp_path, "p.csv", "sales,price,brand,feat\n10,x,a,0\n"))
    assert (e.value.row, e.value.column) == (2, "price")
    with pytest.raises(DataError, match="sales"):
        read_oj(write(tmp_path, "q.csv", "price,brand,feat\n2,a,0\n"))
    got = read_oj(write(tmp_path, "r.csv", "logmove,price,brand,feat\n0,2,a,0\n"))
    assert got["sales"].to_list() == [1.0]


def test_oj_parquet_ids_as_text_and_bad_values(tmp_path):
    frame = pl.DataFrame({"store": [5, 12], "brand": ["a", "b"], "week": [1, 2], "logmove": [0.0, 1.0],
                          "feat": [0, 1], "price": [2.0, 3.0]})
    frame.write_parquet(tmp_path / "oj.parquet")
    got = read_oj(tmp_path / "oj.parquet")
    assert got["store"].to_list() == ["5", "12"] and got["feat"].dtype == pl.Float64
    assert got.columns == ["store", "brand", "week", "price", "feat", "sales", "logmove"]
    frame.with_columns(pl.Series("price", [2.0, float("nan")])).write_parquet(tmp_path / "nan.parquet")
    with pytest.raises(DataError) as e:
        read_oj(tmp_path / "nan.parquet")
    assert (e.value.row, e.value.column) == (2, "price")  # Parquet rows count from 1, no header
    head = "store,brand,week,logmove,feat,price\n"
    for body, row, column in [("1,a,1,0,0,2\n,a,2,0,0,2\n", 3, "store"), ("1,a,1,inf,0,2\n", 2, "logmove"),
                              ("1,a,1,0,,2\n", 2, "feat")]:
        with pytest.raises(DataError) as e:
            read_oj(write(tmp_path, "b.csv", head + body))
        assert (e.value.row, e.value.column) == (row, column)


def test_oj_demographics_join_on_store_text(tmp_path):
    sales = write(tmp_path, "s.csv", "store,brand,week,logmove,feat,price\n2,a,1,0,0,2\n9,a,1,0,0,2\n")
    got = read_oj(sales, write(tmp_path, "d.csv", "STORE,INCOME\n2,10.5\n"))
    assert got["income"].to_list() == [10.5, None]  # store 9 has no demographics
    with pytest.raises(DataError) as e:
        read_oj(sales, write(tmp_path, "e.csv", "STORE,INCOME\n2,\n"))
    assert (e.value.row, e.value.column) == (2, "income")


def test_table_types_inferred_and_bad_files(tmp_path):
    assert read_table(write(tmp_path, "t.csv", "item,price\n1,2.5\n")).dtypes == [pl.Int64, pl.Float64]
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "none.csv")
    with pytest.raises(DataError, match="cannot read table"):
        read_table(write(tmp_path, "t.parquet", "not parquet"))
