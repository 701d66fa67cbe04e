"""Hostile input through the CLI: random malformed event files and random option values
end in exit 2 (or a valid report) with a short message and never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopml.cli import main

HEADER = "user_id,item_id,timestamp,event_type,price\n"
CELLS = st.one_of(
    st.sampled_from(["", "u1", "i9", "nan", "inf", "-inf", "-3", "0", "1e308", "9999-12-31", "1899-01-01",
                     "2024-13-45", "view", "buy", "returned", "\"", "'", ";", "\t", "1700000000", "1.7e12",
                     "2024-05-01 10:00:00 UTC", "5/1/2024 10:00", "\x00", "é", "\ufeff"]),
    st.text(max_size=6),
)
ROWS = st.lists(st.lists(CELLS, min_size=1, max_size=7), min_size=0, max_size=6)
ENCODINGS = st.sampled_from(["utf-8", "utf-16", "latin-1"])
SEPARATORS = st.sampled_from([",", ";", "\t", "|"])


def _write(rows, sep, enc, header: bool) -> Path:
    text = (HEADER.replace(",", sep) if header else "") + "".join(sep.join(r) + "\n" for r in rows)
    path = Path(tempfile.mkdtemp(prefix="shopml-fuzz-")) / "events.csv"
    path.write_bytes(text.encode(enc, errors="replace"))
    return path


def _run(argv, capsys) -> tuple[int, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ROWS, SEPARATORS, ENCODINGS, st.booleans())
def test_malformed_event_files_exit_2_with_a_short_message(capsys, rows, sep, enc, header):
    path = _write(rows, sep, enc, header)
    code, err = _run(["validate", str(path), "--json"], capsys)
    assert "Traceback" not in err
    assert code in (0, 2)
    if code == 2:
        assert 1 <= len(err.strip().splitlines()) <= 4, err
        assert err.startswith("error:")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["--map", "--event-map", "--event-type", "--timestamp-format", "--missing-user",
                        "--bad-prices", "--exclude-items", "--format", "--table"]),
       st.text(max_size=12))
def test_random_option_values_never_crash(capsys, flag, value):
    path = _write([["u1", "i1", "2024-01-01", "view", "1.0"]], ",", "utf-8", True)
    code, err = _run(["validate", str(path), flag, value, "--json"], capsys)
    assert "Traceback" not in err and code in (0, 2)


@pytest.mark.parametrize("text", ["", "\n\n", "user_id\n", "\x00\x01\x02"])
def test_degenerate_files(tmp_path, capsys, text):
    p = tmp_path / "e.csv"
    p.write_text(text)
    code, err = _run(["validate", str(p)], capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) <= 4
