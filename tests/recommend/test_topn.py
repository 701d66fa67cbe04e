"""The precomputed top-N lists: whenever a list answers, the answer is the one scoring gives;
when it cannot decide (rules that starve it, boosts, pins), it says so instead of guessing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopml.recommend.models import SASRecRecommender
from shopml.recommend.rules import Rules
from shopml.recommend.topn import TopN
from shopml.testing import tiny_sequences

SEQS, _, CATS = tiny_sequences()
ITEMS = SEQS.item_map.to_list()
USERS = list(SEQS.user_ids)
PRICES = {i: float(int(i[1:]) % 7) + 0.5 for i in ITEMS if int(i[1:]) % 5}  # every 5th item: no price
CATS = {i: c for i, c in CATS.items() if int(i[1:]) % 4}  # every 4th item: no category
# A network's scores are continuous, so no ties make two correct orders differ.
MODEL = SASRecRecommender(dim=16, max_len=10, epochs=3, progress=False, threads=2).fit(
    SEQS, item_categories=CATS, item_prices=PRICES)
WIDE, NARROW = TopN.build(MODEL, n=64), TopN.build(MODEL, n=6)

items = st.sampled_from(ITEMS)
bounds = st.one_of(st.none(), st.floats(0, 8, allow_nan=False))


@st.composite
def plain_rules(draw):
    lo, hi = draw(bounds), draw(bounds)
    return Rules(exclude=tuple(draw(st.lists(items, max_size=8))),
                 price_range=draw(st.one_of(st.none(), st.just((lo, hi)))),
                 max_per_category=draw(st.one_of(st.none(), st.integers(1, 3))))


def _scored(user, k, rules):
    return [(r["item_id"], r["score"]) for r in MODEL.recommend([user], k=k, rules=rules)[0]]


@settings(max_examples=150, deadline=None)
@given(rules=st.one_of(st.none(), plain_rules()), k=st.integers(1, 30), user=st.sampled_from(USERS))
def test_a_list_answer_is_the_scored_answer(rules, k, user):
    want = _scored(user, k, rules)
    for top in (WIDE, NARROW):
        got = top.answer(user, k, rules)
        if got is None:
            assert top is NARROW, "the 64-wide list covers this whole tiny catalogue"
            continue
        assert [i for i, _ in want] == [r["item_id"] for r in got]
        # batched and single-row forwards differ in float rounding only
        assert [s for _, s in want] == pytest.approx([r["score"] for r in got], abs=1e-5)


def test_the_narrow_list_defers_when_the_rules_starve_it():
    user = USERS[0]
    top6 = [r["item_id"] for r in NARROW.answer(user, 6)]
    assert NARROW.answer(user, 6, Rules(exclude=(top6[0],))) is None  # 5 left in a list of 6
    assert NARROW.answer(user, 7) is None  # longer than the list
    assert [r["item_id"] for r in NARROW.answer(user, 5, Rules(exclude=(top6[0],)))] == top6[1:]


def test_boosts_pins_and_unknown_users_go_to_the_model():
    user = USERS[0]
    assert WIDE.answer(user, 5, Rules(boost={ITEMS[0]: 2.0})) is None
    assert WIDE.answer(user, 5, Rules(pinned=(ITEMS[0],))) is None
    assert WIDE.answer("nobody", 5) is None


def test_no_lists_past_the_user_cap():
    assert TopN.build(MODEL, max_users=len(USERS) - 1) is None
    assert TopN.build(MODEL, max_users=len(USERS)) is not None
