"""A real shop's log as shipped: times, guests, returns, prices, mappings, fees, excluded counts."""

import json
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopml.data.events import load_events, read_events
from shopml.data.quality import quality_report
from shopml.errors import ConfigError, DataError
from shopml.privacy import pseudonymize_one


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def write(tmp_path, text, name="e.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def kinds(warnings):
    return {w["kind"]: w for w in warnings}


@pytest.mark.parametrize("stamp", ["2024-05-01T10:00:00Z", "2024-05-01 11:00:00+01:00", "2024-05-01T11:00:00+0100",
                                   "2024-05-01 10:00:00 UTC", "2024-05-01 10:00:00 GMT", "2024-05-01 10:00:00",
                                   "5/1/2024 10:00", "5/1/2024 10:00:00"])
def test_timestamp_shapes_without_a_format(tmp_path, stamp):
    df = read_events(write(tmp_path, f"user_id,item_id,timestamp,event_type\nu,i,{stamp},view\n"))
    assert df["timestamp"].to_list() == [utc(2024, 5, 1, 10)]


def test_rees46_export_with_a_column_map(tmp_path):
    p = write(tmp_path, "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
              "2019-10-01 00:00:00 UTC,view,44600062,2103807459595387724,appliances.environment.water_heater,"
              "shiseido,35.79,541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c\n"
              "2019-10-01 00:00:05 UTC,cart,44600062,2103807459595387724,appliances.environment.water_heater,"
              "shiseido,35.79,541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c\n"
              "2019-10-01 00:00:09 UTC,remove_from_cart,44600062,2103807459595387724,,shiseido,35.79,541312140,"
              "72d76fde-8bb3-4e00-8c23-a032dfed738c\n")
    df, warnings = load_events(p, column_map={"event_time": "timestamp", "product_id": "item_id",
                                              "category_code": "category", "user_session": "session_id"})
    assert df["event_type"].to_list() == ["view", "cart"]  # remove_from_cart dropped, counted
    assert kinds(warnings)["dropped_events"]["count"] == 1
    assert df["category"].to_list() == ["appliances.environment.water_heater"] * 2
    assert df["timestamp"][1] == utc(2019, 10, 1, 0, 0, 5)


def test_epoch_units_per_value_with_a_counted_warning(tmp_path):
    p = write(tmp_path, "user_id,item_id,timestamp,event_type\n"
              "u,a,1700000000,view\nu,b,1700000060000,view\nu,c,1700000120000000,view\nu,d,1700000180,view\n")
    df, warnings = load_events(p)
    assert df["timestamp"].to_list() == [utc(2023, 11, 14, 22, 13, 20) + timedelta(minutes=m) for m in range(4)]
    w = kinds(warnings)["mixed_epoch_units"]
    assert (w["count"], w["first_row"]) == (2, 3)


def test_timestamp_format_and_bounds(tmp_path):
    p = write(tmp_path, "user_id,item_id,timestamp,event_type\nu,i,01.05.2024 10:00,view\n")
    assert read_events(p, timestamp_format="%d.%m.%Y %H:%M")["timestamp"].to_list() == [utc(2024, 5, 1, 10)]
    with pytest.raises(DataError) as e:
        read_events(p)
    assert (e.value.row, e.value.column) == (2, "timestamp") and "timestamp_format" in str(e.value)
    future = (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    iso = "2024-01-01T00:00:00Z"
    for first, stamp, words in [(iso, "9999-12-31T00:00:00Z", "future"), (iso, future, "future"),
                                (iso, "1989-12-31T23:59:59Z", "before 1990"), ("1700000000", "86400", "before 1990")]:
        p = write(tmp_path, f"user_id,item_id,timestamp,event_type\nu,i,{first},view\nu,i,{stamp},view\n")
        with pytest.raises(DataError) as e:
            read_events(p)
        assert (e.value.row, e.value.column) == (3, "timestamp") and words in str(e.value)


GUESTS = ("user_id,item_id,timestamp,event_type,session_id\n"
          "a,x,1700000000,purchase,s1\n"
          ",y,1700000010,purchase,s2\n"
          ",z,1700000020,purchase,s2\n"
          ",z,1700000030,purchase,\n")


def test_guests_kept_as_their_session_by_default(tmp_path):
    df, warnings = load_events(write(tmp_path, GUESTS))
    assert df.height == 3 and df["guest"].sum() == 2
    guest_users = set(df.filter(pl.col("guest"))["user_id"])
    assert guest_users == {pseudonymize_one("session:s2")}
    assert df.filter(~pl.col("guest"))["user_id"].to_list() == [pseudonymize_one("a")]
    w = kinds(warnings)
    assert (w["guest_lines"]["count"], w["guest_lines"]["first_row"]) == (3, 3)
    assert (w["guest_lines_dropped"]["count"], w["guest_lines_dropped"]["first_row"]) == (1, 5)
    ex = quality_report(df, warnings)["excluded"]
    assert (ex["guest_lines"], ex["guest_lines_dropped"]) == (3, 1)


def test_guest_policies(tmp_path):
    p = write(tmp_path, GUESTS)
    df, warnings = load_events(p, missing_user="drop")
    assert df.height == 1 and "guest" not in df.columns and kinds(warnings)["guest_lines_dropped"]["count"] == 3
    with pytest.raises(DataError) as e:
        read_events(p, missing_user="error")
    assert (e.value.row, e.value.column) == (3, "user_id")
    no_sessions = write(tmp_path, "user_id,item_id,timestamp,event_type\n,x,1700000000,view\nb,x,1700000001,view\n")
    assert read_events(no_sessions).height == 1  # default without a session column: drop
    with pytest.raises(ConfigError):
        read_events(no_sessions, missing_user="session")
    with pytest.raises(ConfigError):
        read_events(p, missing_user="guess")


def test_returns_net_out_and_zero_quantities_drop(tmp_path):
    p = write(tmp_path, "user_id,item_id,timestamp,event_type,quantity\n"
              "a,x,1700000000,purchase,3\n"
              "a,x,1700000100,purchase,-2\n"   # a cancellation line
              "a,y,1700000200,refund,1\n"      # a return event with a positive count
              "a,y,1700000300,purchase,0\n"
              "a,y,1700000400,Cancelled,\n")
    df, warnings = load_events(p, pseudonymize=False)
    assert df["event_type"].to_list() == ["purchase", "return", "return", "return"]
    assert df["quantity"].to_list()[:3] == [3.0, -2.0, -1.0] and df["quantity"][3] is None
    assert df.filter(pl.col("item_id") == "x")["quantity"].sum() == 1.0
    w = kinds(warnings)
    assert (w["returns"]["count"], w["returns"]["first_row"]) == (3, 3)
    assert (w["zero_quantity"]["count"], w["zero_quantity"]["first_row"]) == (1, 5)
    r = quality_report(df, warnings)
    assert r["events_by_type"]["return"] == 3 and r["excluded"]["returns"] == 3


@pytest.mark.parametrize("price, kind", [("0", "zero"), ("-1.5", "negative"), ("inf", "infinite"), ("NaN", "NaN")])
def test_bad_prices_dropped_or_raised(tmp_path, price, kind):
    p = write(tmp_path, f"user_id,item_id,timestamp,event_type,price\nu,i,1700000000,view,2\nu,j,1700000001,view,{price}\n")
    df, warnings = load_events(p)
    assert df["item_id"].to_list() == ["i"] and df["price"].is_finite().all()
    w = kinds(warnings)["bad_prices"]
    assert (w["count"], w["first_row"]) == (1, 3) and kind in w["message"]
    report = quality_report(df, warnings)
    json.loads(json.dumps(report, allow_nan=False))  # strict JSON: no Infinity/NaN tokens
    with pytest.raises(DataError) as e:
        read_events(p, bad_prices="error")
    assert (e.value.row, e.value.column) == (3, "price")


def test_non_finite_quantity_is_an_error(tmp_path):
    p = write(tmp_path, "user_id,item_id,timestamp,event_type,quantity\nu,i,1700000000,view,inf\n")
    with pytest.raises(DataError) as e:
        read_events(p)
    assert (e.value.row, e.value.column) == (2, "quantity")


def test_two_columns_onto_one_canonical_column(tmp_path):
    p = write(tmp_path, "CustomerID,Cust,user_id,item,ts,ev\n1,2,3,x,1700000000,view\n")
    with pytest.raises(ConfigError) as e:
        read_events(p, column_map={"CustomerID": "user_id", "Cust": "user_id", "item": "item_id"})
    assert "'CustomerID'" in str(e.value) and "'Cust'" in str(e.value)
    with pytest.raises(ConfigError) as e:  # the file already has user_id
        read_events(p, column_map={"CustomerID": "user_id", "item": "item_id"})
    assert "'user_id'" in str(e.value) and "'CustomerID'" in str(e.value)
    df = read_events(p, column_map={"user_id": "session_id", "CustomerID": "user_id", "item": "item_id",
                                    "ts": "timestamp", "ev": "event_type"}, pseudonymize=False)
    assert (df["user_id"][0], df["session_id"][0]) == ("1", "3")  # a rename away is no clash


def test_constant_event_type_for_transaction_logs(tmp_path):
    p = write(tmp_path, "cust,sku,when,qty\n17850.0,85123A,2010-12-01 08:26:00,6\n17850.0,71053,12/1/2010 8:28,-1\n")
    cmap = {"cust": "user_id", "sku": "item_id", "when": "timestamp", "qty": "quantity"}
    df = read_events(p, column_map=cmap, event_type="purchase", pseudonymize=False)
    assert df["user_id"].to_list() == ["17850", "17850"]  # float-text ids read as the integer
    assert df["event_type"].to_list() == ["purchase", "return"]
    typed = write(tmp_path, "cust,sku,when,ev\n1,x,1700000000,view\n", "typed.csv")
    with pytest.raises(ConfigError, match="'ev'"):  # the log has an event type already
        read_events(typed, column_map={"cust": "user_id", "sku": "item_id", "when": "timestamp",
                                       "ev": "event_type"}, event_type="purchase")
    with pytest.raises(ConfigError):
        read_events(p, column_map=cmap, event_type="shipment")


def test_exclude_items_from_a_list_or_a_file(tmp_path):
    p = write(tmp_path, "user_id,item_id,timestamp,event_type\n"
              "u,POST,1700000000,purchase\nu,123,1700000001,purchase\nu,M,1700000002,purchase\nu,9,1700000003,view\n")
    df, warnings = load_events(p, exclude_items=["POST", "M"])
    assert df["item_id"].to_list() == ["123", "9"]
    w = kinds(warnings)["excluded_items"]
    assert (w["count"], w["first_row"]) == (2, 2)
    codes = write(tmp_path, "# fees\nPOST, M\n9\n", "fees.txt")
    assert read_events(p, exclude_items=codes)["item_id"].to_list() == ["123"]
    assert read_events(p, exclude_items=str(codes)).height == 1
    with pytest.raises(ConfigError):
        read_events(p, exclude_items="POST")  # a bare string is taken as a file name


def test_fee_like_items_are_scored_from_the_data(tmp_path):
    rows = []
    for b in range(40):  # 40 baskets: postage in each at an order-dependent price, products stable
        rows.append(f"u{b},POSTAGE,{1700000000 + b},purchase,{5 + 3 * b},inv{b}")
        rows.append(f"u{b},{1000 + b % 7},{1700000000 + b},purchase,2.5,inv{b}")
        rows.append(f"u{b},SKU{2000 + b},{1700000000 + b},purchase,{1 + b % 3},inv{b}")
    p = write(tmp_path, "user_id,item_id,timestamp,event_type,price,session_id\n" + "\n".join(rows) + "\n")
    df, warnings = load_events(p)
    fees = quality_report(df, warnings)["fee_like_items"]
    assert fees[0]["item_id"] == "POSTAGE" and fees[0]["basket_share"] == 1.0 and fees[0]["events"] == 40
    assert "no digit" in fees[0]["why"] and fees[0]["price_spread"] == pytest.approx((122 - 5) / 63.5)
    assert {f["item_id"] for f in fees} == {"POSTAGE"}
    assert set(fees[0]) == {"item_id", "why", "score", "basket_share", "price_spread", "events"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["u1", "u2", ""]), st.integers(-3, 3),
                          st.sampled_from(["1.5", "0", "-2", "inf", "nan", ""])), min_size=1, max_size=12))
def test_cleaned_frame_invariants(tmp_path_factory, rows):
    """Whatever mix of guests, returns and bad prices: no inf/NaN, returns <= 0, counts add up."""
    p = tmp_path_factory.mktemp("h") / "e.csv"
    body = "".join(f"{u},i{k},{1700000000 + k},purchase,{q},{pr},s{k % 2}\n" for k, (u, q, pr) in enumerate(rows))
    p.write_text("user_id,item_id,timestamp,event_type,quantity,price,session_id\n" + body)
    try:
        df, warnings = load_events(p)
    except DataError as e:
        assert "no events left" in str(e)
        return
    ex = quality_report(df, warnings)["excluded"]
    assert df.height == len(rows) - ex["zero_quantity"] - ex["bad_prices"] - ex["guest_lines_dropped"]
    assert df.select(pl.col("price").is_finite().all() & (pl.col("price") > 0).all()).item() in (True, None)
    assert (df.filter(pl.col("event_type") == "return")["quantity"] < 0).all()
    assert (df.filter(pl.col("event_type") == "purchase")["quantity"].fill_null(1) > 0).all()
    assert ex["returns"] == df.filter(pl.col("event_type") == "return").height
