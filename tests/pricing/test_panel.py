"""The panel benchmark's input: the OJ reader's frame in the benchmark's layout."""

import pytest

from shopml.errors import DataError
from shopml.pricing.panel import read_panel


def test_layout_and_demographics_as_controls(tmp_path):
    sales = tmp_path / "s.csv"
    sales.write_text("price,feat,logmove,week,brand,store\n2,0,0,1,a,2\n2,0,0,2,a,2\n2,0,0,1,a,5\n2,0,0,1,a,9\n")
    demo = tmp_path / "d.csv"
    demo.write_text("STORE,INCOME\n2,10.0\n5,16.0\n")
    got = read_panel(sales, demo)
    assert got.columns == ["store", "brand", "week", "logmove", "feat", "price", "demo_income"]
    assert got["store"].to_list() == ["2", "2", "5", "9"]  # stores are categories
    assert got["demo_income"].to_list() == [10.0, 10.0, 16.0, 12.0]  # store 9: (10 + 10 + 16) / 3, over rows


def test_sales_file_without_store_week_is_not_a_panel(tmp_path):
    bds = tmp_path / "bds.csv"
    bds.write_text("sales,price,brand,feat\n10,2.5,a,0\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['store', 'week'\]"):
        read_panel(bds)
