"""Sequences, id maps, splits and sessions: by hand, and against plain-Python references."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shopml.data.sequences import (
    EVENT_TYPES,
    IdMap,
    Sequences,
    build_sequences,
    leave_one_out,
    sessionize,
    temporal_split,
)
from shopml.errors import ConfigError, DataError

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)


def events(rows):
    """rows: (user, item, minutes after T0, event_type)."""
    u, i, m, e = zip(*rows)
    return pl.DataFrame(
        {
            "user_id": list(u),
            "item_id": list(i),
            "timestamp": pl.Series([T0 + timedelta(minutes=x) for x in m]).cast(pl.Datetime("us", "UTC")),
            "event_type": list(e),
        }
    )


def test_build_sequences_by_hand():
    ev = events(
        [
            ("u2", "b", 5, "view"),
            ("u1", "c", 3, "view"),
            ("u1", "a", 1, "cart"),
            ("u1", "b", 3, "purchase"),  # same minute as "c": file order is kept (c, then b)
            ("u2", "a", 1, "view"),
        ]
    )
    s = build_sequences(ev)
    assert s.user_ids == ["u1", "u2"]
    assert s.item_map.to_list() == ["a", "b", "c"]
    assert [s[u].tolist() for u in range(2)] == [[1, 3, 2], [1, 2]]
    assert s.indptr.tolist() == [0, 3, 5] and s.lengths.tolist() == [3, 2]
    assert [EVENT_TYPES[c] for c in s.event_types[:3]] == ["cart", "view", "purchase"]
    assert s.timestamps.dtype == np.dtype("datetime64[us]")
    bought = build_sequences(ev, ["purchase"])
    assert bought.user_ids == ["u1"] and bought[0].tolist() == [1] and bought.item_map.to_list() == ["b"]


def test_build_sequences_with_training_item_map_drops_unknown_items():
    ev = events([("u", "a", 0, "view"), ("u", "zzz", 1, "view"), ("v", "b", 2, "view")])
    s = build_sequences(ev, item_map=IdMap(["b", "a"]))
    assert [s[u].tolist() for u in range(2)] == [[2], [1]]


def test_build_sequences_by_session():
    ev = events([("u", "a", 0, "view"), ("u", "b", 90, "view"), ("u", "c", 95, "view")])
    s = build_sequences(sessionize(ev), by="session_id")
    assert s.user_ids == ["u:0", "u:1"] and s.lengths.tolist() == [1, 2]


def test_missing_column_is_a_data_error():
    with pytest.raises(DataError, match="item_id"):
        build_sequences(pl.DataFrame({"user_id": ["u"], "timestamp": [T0]}))


def test_id_map_json_round_trip_and_unknown_ids():
    m = IdMap.fit(["x", "b", "x", "a"])
    again = IdMap.from_list(json.loads(json.dumps(m.to_list())))
    assert again == m and len(again) == 3
    assert again.encode(["x", "nope", "a"]).tolist() == [3, 0, 1]
    assert again.index("b") == 2 and again.index("nope") == 0
    with pytest.raises(DataError, match="nope"):
        again.encode(["a", "nope"], unknown="error")
    with pytest.raises(DataError):
        again.decode([0])
    with pytest.raises(DataError):
        IdMap(["a", "a"])


def test_leave_one_out_by_hand():
    s = Sequences(np.array([0, 5, 7, 10]), np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 1]), ["a", "b", "c"], IdMap("abcdefghi"))
    train, valid, test = leave_one_out(s)
    assert [train[u].tolist() for u in range(3)] == [[1, 2, 3], [6, 7], [8]]
    assert valid.tolist() == [4, 0, 9] and test.tolist() == [5, 0, 1]
    hist = train.append(valid)
    assert [hist[u].tolist() for u in range(3)] == [[1, 2, 3, 4], [6, 7], [8, 9]]
    assert train.user_ids == s.user_ids and train.item_map is s.item_map


def test_temporal_split_by_time_and_quantile():
    ev = events([("u", "a", m, "view") for m in range(10)])
    train, test = temporal_split(ev, T0 + timedelta(minutes=7))
    assert len(train) == 7 and len(test) == 3
    train, test = temporal_split(ev, "2024-03-01T00:04:00")
    assert len(train) == 4
    train, test = temporal_split(ev, 0.8)
    assert len(train) + len(test) == 10 and train["timestamp"].max() < test["timestamp"].min()
    with pytest.raises(ConfigError):
        temporal_split(ev, "yesterday")


def test_sessionize_by_hand_keeps_existing_ids():
    ev = events([("u", "a", 0, "view"), ("u", "b", 29, "view"), ("u", "c", 60, "view"), ("v", "a", 61, "view")])
    out = sessionize(ev)
    assert out["session_id"].to_list() == ["u:0", "u:0", "u:1", "v:0"]
    assert sessionize(ev, gap="10m")["session_id"].to_list() == ["u:0", "u:1", "u:2", "v:0"]
    given_ids = ev.with_columns(session_id=pl.Series(["s1", None, None, "s9"]))
    assert sessionize(given_ids)["session_id"].to_list() == ["s1", "u:0", "u:1", "s9"]
    with pytest.raises(ConfigError):
        sessionize(ev, gap="soon")
    with pytest.raises(DataError) as e:
        sessionize(ev.with_columns(user_id=pl.Series(["u", None, "u", "v"])))
    assert (e.value.row, e.value.column) == (2, "user_id")


# --------------------------------------------------------------------------- references

rows_strategy = st.lists(
    st.tuples(st.sampled_from("uvwx"), st.sampled_from("abcdefg"), st.integers(0, 200), st.sampled_from(EVENT_TYPES)),
    min_size=1,
    max_size=40,
)


def ref_sequences(rows):
    by_user = {}
    for pos, (u, i, m, kind) in enumerate(rows):
        if kind == "return":  # a return is never an interaction of the sequence
            continue
        by_user.setdefault(u, []).append((m, pos, i))
    return {u: [i for _, _, i in sorted(v)] for u, v in by_user.items()}


@settings(max_examples=60, deadline=None)
@given(rows_strategy)
def test_build_and_split_match_reference(rows):
    ref = ref_sequences(rows)
    assume(ref)
    s = build_sequences(events(rows))
    assert s.user_ids == sorted(ref)
    decoded = {u: s.item_map.decode(s[k]) for k, u in enumerate(s.user_ids)}
    assert decoded == ref
    train, valid, test = leave_one_out(s)
    for k, u in enumerate(s.user_ids):
        seq = ref[u]
        if len(seq) >= 3:
            assert train.item_map.decode(train[k]) == seq[:-2]
            assert s.item_map.decode([valid[k], test[k]]) == seq[-2:]
        else:
            assert train.item_map.decode(train[k]) == seq and valid[k] == test[k] == 0
    padded = s.to_padded(4)
    for k, u in enumerate(s.user_ids):
        want = [0] * max(0, 4 - len(ref[u])) + s.item_map.encode(ref[u][-4:]).tolist()
        assert padded[k].tolist() == want


@settings(max_examples=60, deadline=None)
@given(rows_strategy, st.integers(1, 60))
def test_sessionize_matches_reference(rows, gap):
    out = sessionize(events(rows), gap=f"{gap}m")
    got = {}
    for u, i, sid in out.select("user_id", "item_id", "session_id").iter_rows():
        got.setdefault(sid, []).append(i)
    want = {}
    for u, seq in sorted({u: sorted((m, p, i) for p, (uu, i, m, _) in enumerate(rows) if uu == u) for u, *_ in rows}.items()):
        n, last = 0, None
        for m, _, i in seq:
            if last is not None and m - last > gap:
                n += 1
            want.setdefault(f"{u}:{n}", []).append(i)
            last = m
    assert got == want


def test_unsorted_and_sorted_input_give_the_same_sequences():
    rng = np.random.default_rng(1)
    n = 3000
    ev = pl.DataFrame(
        {
            "user_id": rng.integers(0, 50, n).astype(str),
            "item_id": rng.integers(0, 80, n).astype(str),
            "timestamp": pl.Series(rng.integers(0, 10**9, n)).cast(pl.Datetime("us", "UTC")),
            "event_type": rng.choice(EVENT_TYPES, n),
        }
    )
    a = build_sequences(ev.sort("user_id", "timestamp"))
    b = build_sequences(ev.sample(fraction=1.0, shuffle=True, seed=3))
    assert a.user_ids == b.user_ids and np.array_equal(a.items, b.items) and np.array_equal(a.indptr, b.indptr)


def test_data_package_exports_resolve_lazily():
    import shopml.data as data

    for name in data.__all__:
        assert getattr(data, name) is not None, name
    assert data.build_sequences is build_sequences
    with pytest.raises(AttributeError):
        data.no_such_name  # noqa: B018
