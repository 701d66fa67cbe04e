"""Random malformed event files: load_events either succeeds or raises a ShopMLError, never
another exception type (a traceback in the CLI)."""

import gzip

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopml.data.events import load_events
from shopml.errors import ShopMLError

SEPS = [",", ";", "\t", "|"]
FIELDS = st.one_of(
    st.sampled_from(["u1", "", " ", "\"", "\"a,b\"", "view", "buy", "refund", "cart", "NaN", "inf", "-0",
                     "1e400", "0", "-5", "17850.0", "POST", "\u00e9", "null"]),
    st.integers(-10**20, 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["2024-05-01T10:00:00Z", "2019-10-01 00:00:00 UTC", "12/1/2010 8:26", "13/13/2010 8:26",
                     "2024-02-30", "9999-12-31", "1700000000", "1700000000000", "1.7e9", "T", "2024-05-01 +0100"]),
    st.text(max_size=6),
)
HEADERS = st.lists(st.sampled_from(["user_id", "item_id", "timestamp", "event_type", "price", "quantity",
                                    "session_id", "guest", "category", "extra", "user_id "]),
                   min_size=0, max_size=8)


@st.composite
def event_files(draw):
    kind = draw(st.sampled_from(["text", "bytes", "jsonl", "gz"]))
    if kind == "bytes":
        return "e.csv", draw(st.binary(max_size=300))
    header = draw(HEADERS)
    rows = draw(st.lists(st.lists(FIELDS, min_size=0, max_size=len(header) + 2), max_size=8))
    if kind == "jsonl":
        import json

        lines = [json.dumps(dict(zip(header, r))) for r in rows] + draw(st.lists(st.text(max_size=10), max_size=2))
        return "e.jsonl", "\n".join(lines).encode()
    sep = draw(st.sampled_from(SEPS))
    text = "\n".join([sep.join(header)] + [sep.join(r) for r in rows]) + draw(st.sampled_from(["", "\n", "\r\n"]))
    data = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"])), errors="replace")
    return ("e.csv.gz", gzip.compress(data)) if kind == "gz" else ("e.csv", data)


OPTIONS = st.fixed_dictionaries({}, optional={
    "event_type": st.sampled_from(["purchase", "view", "nope"]),
    "missing_user": st.sampled_from(["session", "drop", "error"]),
    "bad_prices": st.sampled_from(["drop", "error"]),
    "timestamp_format": st.sampled_from(["%Y-%m-%d", "%d/%m/%Y %H:%M", "%Q"]),
    "exclude_items": st.just(["POST"]),
})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event_files(), OPTIONS)
def test_malformed_files_raise_only_shopml_errors(tmp_path, file, options):
    name, data = file
    p = tmp_path / name
    p.write_bytes(data)
    try:
        df, warnings = load_events(p, **options)
    except ShopMLError:
        return
    assert df.height > 0 and all(set(w) == {"kind", "count", "message", "first_row"} for w in warnings)
