"""Business rules at request time: every rule holds on every returned slate, and k items come
back whenever k are eligible (hypothesis over random rule sets)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopml.errors import ConfigError
from shopml.recommend.baselines import ItemKNN
from shopml.recommend.rules import Rules
from shopml.testing import tiny_sequences

SEQS, HISTS, CATS = tiny_sequences()
ITEMS = SEQS.item_map.to_list()
PRICES = {i: float(int(i[1:]) % 7) + 0.5 for i in ITEMS if int(i[1:]) % 5}  # every 5th item: no price
CATS = {i: c for i, c in CATS.items() if int(i[1:]) % 4}  # every 4th item: no category
NEW = ["n1", "n2", "n3"]  # listed after fit, no interactions yet (new_slots)
PRICES |= {"n1": 2.5, "n2": 4.5}
CATS |= {"n1": "new-a", "n3": "new-a"}
MODEL = ItemKNN().fit(SEQS, item_categories=CATS, item_prices=PRICES).add_items(
    NEW, item_prices=PRICES, item_categories=CATS)
ITEMS = ITEMS + NEW

items = st.sampled_from(ITEMS)
bounds = st.one_of(st.none(), st.floats(0, 8, allow_nan=False))


@st.composite
def rule_sets(draw):
    lo, hi = draw(bounds), draw(bounds)  # low above high is an empty range: nothing eligible
    return Rules(exclude=tuple(draw(st.lists(items, max_size=8))),
                 price_range=draw(st.one_of(st.none(), st.just((lo, hi)))),
                 max_per_category=draw(st.one_of(st.none(), st.integers(1, 3))),
                 pinned=tuple(draw(st.lists(items, max_size=4, unique=True))),
                 boost=draw(st.dictionaries(items, st.floats(-5, 5, allow_nan=False), max_size=4)),
                 new_slots=draw(st.integers(0, 3)))


def _eligible(rules, hist, exclude_seen):
    out = []
    for i in ITEMS:
        if i in rules.exclude or (exclude_seen and i in hist):
            continue
        if rules.price_range is not None:
            lo, hi = rules.price_range
            p = PRICES.get(i)
            if p is None or (lo is not None and p < lo) or (hi is not None and p > hi):
                continue
        out.append(i)
    return out


def _capacity(eligible, cap):
    if cap is None:
        return len(eligible)
    per_cat: dict[str, int] = {}
    n = 0
    for i in eligible:
        c = CATS.get(i, "")
        if not c:
            n += 1
        elif per_cat.get(c, 0) < cap:
            per_cat[c] = per_cat.get(c, 0) + 1
            n += 1
    return n


@settings(max_examples=150, deadline=None)
@given(rules=rule_sets(), k=st.integers(1, 30), user=st.integers(0, len(HISTS) - 1), exclude_seen=st.booleans())
def test_every_rule_holds_on_every_slate(rules, k, user, exclude_seen):
    hist = HISTS[user]
    slate = MODEL.recommend([hist], k=k, exclude_seen=exclude_seen, rules=rules)[0]
    got = [r["item_id"] for r in slate]
    eligible = _eligible(rules, hist, exclude_seen)
    assert len(got) == len(set(got)) == min(k, _capacity(eligible, rules.max_per_category))
    assert set(got) <= set(eligible)
    if rules.max_per_category is not None:
        for c in {CATS.get(i, "") for i in got} - {""}:
            assert sum(CATS.get(i, "") == c for i in got) <= rules.max_per_category
    shown_pins = [i for i in rules.pinned if i in got]
    assert got[: len(shown_pins)] == shown_pins, "eligible pinned items come first, in order"
    assert all(r.get("pinned") for r in slate[: len(shown_pins)])
    rest = [r["score"] for r in slate[len(shown_pins):]]
    assert rest == sorted(rest, reverse=True)
    if rules.max_per_category is None:  # (a cap can leave a new item's category full)
        new_ok = [i for i in eligible if i in NEW and i not in rules.pinned]
        want = min(rules.new_slots, len(new_ok), k - len(shown_pins))
        assert sum(i in NEW for i in got[len(shown_pins):]) >= want, "new_slots are kept for new items"


def test_new_slots_show_the_best_new_items_in_their_place_by_score():
    hist = HISTS[0]
    plain = MODEL.recommend([hist], k=5)[0]
    assert not {r["item_id"] for r in plain} & set(NEW)  # ItemKNN ranks added items last
    boost = {"n2": 0.5, "n1": 0.25}  # no ties among the new items; still below every known one
    slate = MODEL.recommend([hist], k=5, rules=Rules(new_slots=2, boost=boost))[0]
    got = [r["item_id"] for r in slate]
    new_order = [r["item_id"] for r in MODEL.recommend([hist], k=len(ITEMS), rules=Rules(boost=boost))[0]
                 if r["item_id"] in NEW]
    assert got == [r["item_id"] for r in plain[:3]] + new_order[:2]
    assert Rules.from_options(new_slots=2).new_slots == 2
    old_only = ItemKNN().fit(SEQS)  # nothing new: the rule changes nothing
    assert old_only.recommend([hist], k=5, rules=Rules(new_slots=2)) == old_only.recommend([hist], k=5)


def test_boost_moves_an_item_to_the_top_and_pins_survive_save_load(tmp_path):
    hist = HISTS[0]
    plain = MODEL.recommend([hist], k=5)[0]
    last = MODEL.recommend([hist], k=len(ITEMS))[0][-1]["item_id"]
    boosted = MODEL.recommend([hist], k=5, rules=Rules(boost={last: 1e6}))[0]
    assert boosted[0]["item_id"] == last and boosted[1:] == plain[:4]
    MODEL.save(tmp_path / "m")
    again = ItemKNN.load(tmp_path / "m")
    rules = Rules(price_range=(1.0, 3.0), max_per_category=1, pinned=(ITEMS[3],))
    assert again.recommend([hist], k=6, rules=rules) == MODEL.recommend([hist], k=6, rules=rules)


@pytest.mark.parametrize("bad", [dict(max_per_category=0), dict(new_slots=-1), dict(price_range=(float("nan"), None)),
                                 dict(boost={"i1": float("inf")})])
def test_bad_rules_are_config_errors(bad):
    with pytest.raises(ConfigError):
        Rules(**bad)


def test_price_rule_needs_prices():
    plain = ItemKNN().fit(SEQS)
    assert plain.recommend([HISTS[0]], k=3, rules=Rules(price_range=(0.0, None))) == [[]]


@settings(max_examples=40, deadline=None)
@given(per_row=st.lists(st.one_of(st.none(), rule_sets()), min_size=1, max_size=6), k=st.integers(1, 12))
def test_one_batched_call_with_rules_per_history_equals_one_call_each(per_row, k):
    """The service batches concurrent requests, each with its own rules, into one call."""
    users = [f"user{n}" for n in range(len(per_row))]
    batched = MODEL.recommend(users, k=k, rules=per_row)
    assert batched == [MODEL.recommend([u], k=k, rules=r)[0] for u, r in zip(users, per_row)]


def test_rules_per_history_must_match_the_histories():
    with pytest.raises(ConfigError, match="one per history"):
        MODEL.recommend(["user0", "user1"], k=3, rules=[None])
