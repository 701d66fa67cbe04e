"""Input paths: folders, globs, lists, compression, PostgreSQL dispatch; errors name file and line."""

import base64
import gzip
import sys

import polars as pl
import pytest

from shopml.data.events import read_events
from shopml.errors import ConfigError, DataError

HEADER = "user_id,item_id,timestamp,event_type\n"
# zstd -q z.csv of: HEADER + "u1,i1,1700000000,view\nu2,i2,1700000060,purchase\n" (made once with
# the zstd CLI, so the test needs no zstd package)
ZST = base64.b64decode("KLUv/SRVLQIAEgQOFKBXB7BNhK3copKMVxUlRRf8VzcoZ4YIYaUqAcxr8gy/lQSl5S15VgceLNxclRAyp2MyvsPPMssDADmLF5duVkkCNkRg+g==")


def days(tmp_path, n=3, sep=","):
    d = tmp_path / "by-day"
    d.mkdir()
    for k in range(n):
        rows = "".join(f"u{k}{sep}i{j}{sep}{1700000000 + 86400 * k + j}{sep}view\n" for j in range(2))
        (d / f"2023-11-{14 + k}.csv").write_text(HEADER.replace(",", sep) + rows)
    (d / "README.txt").write_text("not events\n")
    return d


def test_folder_glob_and_list_read_every_file_in_name_order(tmp_path):
    d = days(tmp_path)
    df = read_events(d, pseudonymize=False)
    assert df.height == 6 and sorted(set(df["user_id"])) == ["u0", "u1", "u2"]
    by_glob = read_events(str(d / "2023-11-1[45].csv"), pseudonymize=False)
    assert sorted(set(by_glob["user_id"])) == ["u0", "u1"]
    files = sorted(d.glob("*.csv"))
    assert read_events(files[::-1], pseudonymize=False).equals(df)  # rows end sorted by (user, time)


def test_each_file_has_its_own_header_and_separator(tmp_path):
    d = days(tmp_path)
    (d / "2023-11-17.csv").write_text("item_id;event_type;user_id;timestamp\ni9;cart;u9;1700400000\n")
    df = read_events(d, pseudonymize=False)
    assert df.filter(pl.col("user_id") == "u9")["event_type"].to_list() == ["cart"]
    (d / "2023-11-18.csv").write_text("user_id,item_id,when,event_type\nu,i,1700500000,view\n")
    with pytest.raises(DataError) as e:
        read_events(d)
    assert "2023-11-18.csv" in str(e.value) and "header differs" in str(e.value)


@pytest.mark.parametrize("bad, line, words", [
    ("u1,i1,1700000000,view\nu1,i1,yesterday,view\n", 3, "unparsable timestamp"),
    ("u1,i1,1700000000,view\nu1,i1\n", 3, "truncated line"),
    ("u1,i1,1700000000,view,extra\n", 2, "too many fields"),
])
def test_errors_in_a_folder_name_the_file_and_its_line(tmp_path, bad, line, words):
    d = days(tmp_path)
    (d / "2023-11-15.csv").write_text(HEADER + bad)
    with pytest.raises(DataError) as e:
        read_events(d)
    assert str(e.value.path).endswith("2023-11-15.csv") and e.value.row == line and words in str(e.value)


def test_gzip_and_zstd_files(tmp_path):
    rows = "u1,i1,1700000000,view\nu2,i2,1700000060,purchase\n"
    (tmp_path / "e.csv.gz").write_bytes(gzip.compress((HEADER + rows).encode()))
    (tmp_path / "e.csv.zst").write_bytes(ZST)
    (tmp_path / "e.jsonl.gz").write_bytes(gzip.compress(
        b'{"user_id":"u1","item_id":"i1","timestamp":1700000000,"event_type":"view"}\n'))
    gz = read_events(tmp_path / "e.csv.gz", pseudonymize=False)
    assert gz["item_id"].to_list() == ["i1", "i2"]
    assert read_events(tmp_path / "e.csv.zst", pseudonymize=False).equals(gz)
    assert read_events(tmp_path / "e.jsonl.gz", pseudonymize=False)["item_id"].to_list() == ["i1"]
    pl.read_csv(tmp_path / "e.csv.gz").write_parquet(tmp_path / "e.parquet")
    (tmp_path / "e.parquet.gz").write_bytes(gzip.compress((tmp_path / "e.parquet").read_bytes()))
    assert read_events(tmp_path / "e.parquet.gz", pseudonymize=False).equals(gz)
    (tmp_path / "bad.csv.gz").write_bytes(gzip.compress((HEADER + "u,i,1700000000,view\nu,i,never,view\n").encode()))
    with pytest.raises(DataError) as e:
        read_events(tmp_path / "bad.csv.gz")
    assert (e.value.row, e.value.column) == (3, "timestamp")
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress((HEADER + rows).encode())[:20])
    with pytest.raises(DataError):
        read_events(tmp_path / "cut.csv.gz")


def test_parquet_folder(tmp_path):
    for k in range(2):
        pl.DataFrame({"user_id": [f"u{k}"], "item_id": ["i"], "timestamp": [1700000000 + k],
                      "event_type": ["view"]}).write_parquet(tmp_path / f"part-{k}.parquet")
    assert read_events(tmp_path, pseudonymize=False)["user_id"].to_list() == ["u0", "u1"]


def test_missing_inputs(tmp_path):
    with pytest.raises(DataError, match="no files match"):
        read_events(str(tmp_path / "*.csv"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no event files"):
        read_events(tmp_path)
    with pytest.raises(ConfigError):
        read_events([])


def test_postgresql_dispatch_and_redacted_uri(monkeypatch):
    import types

    calls = []

    def read_sql(uri, *, table=None, query=None):
        calls.append((uri, table, query))
        return pl.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": [1700000000],
                             "event_type": ["view"], "price": [-1.0]})

    monkeypatch.setitem(sys.modules, "shopml.data.sql", types.SimpleNamespace(read_sql=read_sql))
    uri = "postgresql://shop:s3cret@db:5432/shop"
    with pytest.raises(DataError) as e:  # the negative price names the source, not the password
        read_events(uri, table="events", bad_prices="error")
    assert calls[-1] == (uri, "events", None)
    assert "s3cret" not in str(e.value) and "db:5432" in str(e.value) and e.value.row == 1
    with pytest.raises(DataError, match="no events left"):  # the one row is dropped by default
        read_events(uri, query="select * from events")
    assert calls[-1] == (uri, None, "select * from events")
    with pytest.raises(ConfigError):
        read_events(uri)  # neither table= nor query=
    with pytest.raises(ConfigError):
        read_events("events.csv", table="events")
