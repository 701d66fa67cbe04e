"""Simulator: determinism, the planted structure is in the events, intent is observable."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from shopml.data.sequences import sessionize
from shopml.data.simulate import PROPENSITY_COEF, simulate_events, simulate_market, simulate_shop
from shopml.evaluation.metrics import auc, expected_calibration_error

CANONICAL = {
    "user_id": pl.Utf8, "item_id": pl.Utf8, "timestamp": pl.Datetime("us", "UTC"), "event_type": pl.Utf8,
    "session_id": pl.Utf8, "price": pl.Float64, "quantity": pl.Float64, "category": pl.Utf8,
}


@pytest.fixture(scope="module")
def shop():
    return simulate_shop(n_users=400, n_items=120, n_categories=6, events_per_user=30, seed=7)


def successor_pairs(events: pl.DataFrame) -> pl.DataFrame:
    """Consecutive views inside one session."""
    v = events.filter(pl.col("event_type") == "view")
    return v.select(
        prev=pl.col("item_id"), nxt=pl.col("item_id").shift(-1),
        same=pl.col("session_id") == pl.col("session_id").shift(-1),
    ).filter(pl.col("same"))


def test_seeded_and_canonical(shop):
    again = simulate_shop(n_users=400, n_items=120, n_categories=6, events_per_user=30, seed=7)
    assert_frame_equal(shop.events, again.events)
    assert np.array_equal(shop.truth.next_item, again.truth.next_item)
    other = simulate_shop(n_users=400, n_items=120, n_categories=6, events_per_user=30, seed=8)
    assert not shop.events["item_id"].equals(other.events["item_id"])
    assert dict(shop.events.schema) == CANONICAL
    assert shop.events["user_id"].is_sorted()
    assert shop.events.group_by("user_id").agg(ok=pl.col("timestamp").is_sorted())["ok"].all()
    assert 25 <= shop.events.height / 400 <= 35  # about events_per_user
    assert shop.events["user_id"][0] == "u000000"  # raw ids: read_events pseudonymizes


def test_planted_successor_is_in_the_events(shop):
    t = shop.truth
    succ = dict(zip(t.item_ids, [t.item_ids[j] for j in t.next_item]))
    pairs = successor_pairs(shop.events)
    hit = np.mean([succ[a] == b for a, b in pairs.select("prev", "nxt").iter_rows()])
    # follow_prob 0.6 plus the chance that a fresh draw lands on the successor.
    assert 0.55 <= hit <= 0.75, hit
    # Same category as their predecessor, and never the item itself.
    assert (t.item_category[t.next_item] == t.item_category).all()
    assert (t.next_item != np.arange(len(t.item_ids))).all()
    assert t.successor(t.item_ids[3]) == t.item_ids[t.next_item[3]]


def test_user_tastes_drive_views(shop):
    t = shop.truth
    v = shop.events.filter(pl.col("event_type") == "view")
    users = np.array([int(u[1:]) for u in v["user_id"].to_list()])
    cats = t.item_category[np.array([int(i[1:]) for i in v["item_id"].to_list()])]
    counts = np.zeros_like(t.user_taste)
    np.add.at(counts, (users, cats), 1)
    favourite = counts.argmax(1)
    # The most viewed category is usually a top-taste one (random would be ~1/6 share).
    share = np.mean(t.user_taste[np.arange(len(favourite)), favourite] >= np.sort(t.user_taste, 1)[:, -2])
    assert share > 0.8, share


def test_sessions_match_the_events_and_the_gap_rule(shop):
    s = shop.truth.sessions
    bought = shop.events.filter(pl.col("event_type") == "purchase")["session_id"].unique()
    assert set(bought.to_list()) == set(s.filter(pl.col("purchased"))["session_id"].to_list())
    redone = sessionize(shop.events.drop("session_id"), gap="60m")
    # Sessions are >= 1 h apart and views a few minutes apart: the gap rule recovers them.
    assert redone["session_id"].n_unique() == shop.events["session_id"].n_unique() == s.height


def test_propensity_is_a_function_of_observables_and_predicts_outcome(shop):
    s = shop.truth.sessions
    ev = shop.events.filter(pl.col("event_type") != "purchase")
    obs = ev.group_by("session_id").agg(
        n_views=(pl.col("event_type") == "view").sum(),
        n_carts=(pl.col("event_type") == "cart").sum(),
        mean_price=pl.col("price").filter(pl.col("event_type") == "view").mean(),
        span=(pl.col("timestamp").filter(pl.col("event_type") == "view").max()
              - pl.col("timestamp").filter(pl.col("event_type") == "view").min()).dt.total_microseconds(),
    )
    j = s.join(obs, on="session_id", suffix="_obs")
    assert (j["n_views"] == j["n_views_obs"]).all() and (j["n_carts"] == j["n_carts_obs"]).all()
    dwell = np.where(j["n_views"] > 1, j["span"].to_numpy() / 1e6 / np.maximum(j["n_views"].to_numpy() - 1, 1), 0)
    assert np.allclose(dwell, j["mean_dwell_s"].to_numpy(), atol=1e-5)
    y, p = s["purchased"].to_numpy(), s["propensity"].to_numpy()
    assert auc(y, p) == shop.truth.oracle_auc() > 0.75
    assert abs(p.mean() - y.mean()) < 0.03  # outcomes are drawn from the propensity
    assert PROPENSITY_COEF["carts"] > 0 and np.corrcoef(s["n_carts"].to_numpy(), y)[0, 1] > 0.1


def test_simulate_events_fast_path_at_1m():
    ev = simulate_events(1_000_000, seed=2)
    assert ev.height == 1_000_000 and dict(ev.schema) == CANONICAL
    assert ev["user_id"].is_sorted()
    head = ev.head(200_000)
    assert head.group_by("user_id").agg(ok=pl.col("timestamp").is_sorted())["ok"].all()
    shares = ev["event_type"].value_counts(normalize=True).sort("event_type")["proportion"].to_list()
    assert np.allclose(shares, [0.07, 0.03, 0.90], atol=0.005)  # cart, purchase, view
    # The successor chains are there: the most frequent follower of an item is frequent.
    pairs = successor_pairs(head).group_by("prev", "nxt").len().sort("len", descending=True)
    top = pairs.group_by("prev").agg(share=pl.col("len").max() / pl.col("len").sum(), n=pl.col("len").sum())
    assert top.filter(pl.col("n") >= 20)["share"].median() > 0.3


def test_simulate_events_is_seeded_and_exact_for_small_sizes():
    assert_frame_equal(simulate_events(5000, seed=1), simulate_events(5000, seed=1))
    assert not simulate_events(5000, seed=1)["item_id"].equals(simulate_events(5000, seed=2)["item_id"])
    assert [simulate_events(n).height for n in (1, 7, 30)] == [1, 7, 30]


def test_simulate_market_is_re_exported():
    m = simulate_market(n_items=3, n_stores=2, n_weeks=4, seed=0)
    assert m.panel.height == 24 and m.truth.elasticity.shape == (3,)


def _prefix_rows(shop, min_len: int = 3):
    """Every (history prefix, next view) of every user's views, prefixes as CSR rows of
    0-based item indices, plus the last item of each prefix."""
    t = shop.truth
    pos = {raw: i for i, raw in enumerate(t.item_ids)}
    views = shop.events.filter(pl.col("event_type") == "view")
    parts, indptr, users, targets = [], [0], [], []
    for (user,), g in views.group_by("user_id", maintain_order=True):
        seq = np.array([pos[x] for x in g["item_id"].to_list()])
        for j in range(min_len, len(seq)):
            parts.append(seq[:j])
            indptr.append(indptr[-1] + j)
            users.append(int(user[1:]))
            targets.append(seq[j])
    return np.array(indptr), np.concatenate(parts), np.array(users), np.array(targets)


def test_bayes_probabilities_sit_between_the_truth_and_a_taste_blind_guess(shop):
    t = shop.truth
    indptr, items, users, targets = _prefix_rows(shop)
    rows = np.arange(len(targets))
    last = items[indptr[1:] - 1]
    bayes = t.bayes_next_view_probs(indptr, items)
    blind = t.bayes_next_view_probs(np.arange(len(last) + 1), last)  # the last view alone: no taste
    true = t.next_view_probs(users, last)
    assert np.allclose(bayes.sum(1), 1.0)
    ll = {name: np.log(p[rows, targets]).mean() for name, p in (("true", true), ("bayes", bayes), ("blind", blind))}
    assert ll["true"] > ll["bayes"] + 0.01 and ll["bayes"] > ll["blind"] + 0.05, ll
    # a posterior predictive under the prior that drew the tastes is calibrated
    y = np.zeros_like(bayes)
    y[rows, targets] = 1
    assert expected_calibration_error(y.ravel(), bayes.ravel(), n_bins=20) < 0.005


def test_bayes_taste_concentrates_on_a_long_one_category_history(shop):
    t = shop.truth
    c = t.item_category
    fresh = np.full(40, np.flatnonzero(c == 2)[0])  # one item again and again: never its own successor
    short, long = (t.bayes_next_view_probs(np.array([0, n]), fresh[:n]) for n in (1, 40))
    share = lambda p: p[0, c == 2].sum()  # noqa: E731
    assert share(long) > share(short) > 1 / 6  # six categories
    assert share(long) > 0.95
