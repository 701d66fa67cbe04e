"""Calibrated purchase probabilities and the revenue / profit objectives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopml.errors import ConfigError
from shopml.evaluation.metrics import expected_calibration_error
from shopml.recommend.baselines import ItemKNN
from shopml.recommend.value import fit_temperature
from shopml.testing import tiny_sequences


def test_fit_temperature_recovers_a_planted_temperature():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 40, generator=g) * 3
    logits[:, 0] = float("-inf")  # the padding column
    targets = torch.multinomial(torch.softmax(logits / 2.0, dim=1), 1, generator=g).squeeze(1)
    rows = torch.arange(4000)[:, None]  # the history names the row, so chunks see their own scores
    t = fit_temperature(lambda h, u: logits[h[:, 0]], rows, torch.zeros(4000), targets)
    assert t == pytest.approx(2.0, rel=0.06)
    p = torch.softmax(logits / t, dim=1)
    top = p.topk(3, dim=1)
    hit = (top.indices == targets[:, None]).numpy().ravel()
    assert expected_calibration_error(hit, top.values.numpy().ravel()) < 0.03


SEQS, HISTS, CATS = tiny_sequences()
ITEMS = SEQS.item_map.to_list()
PRICES = {i: 1.0 + int(i[1:]) for i in ITEMS}
COSTS = {i: 0.5 * PRICES[i] for i in ITEMS[::2]}


@pytest.fixture(scope="module")
def model():
    m = ItemKNN().fit(SEQS, item_prices=PRICES, item_costs=COSTS)
    last = np.array([SEQS.items[SEQS.indptr[u + 1] - 1] for u in range(SEQS.n_users)])
    train = SEQS.select_events(np.ones(len(SEQS.items), bool))  # calibrate on the last item of each user
    return m.calibrate(train, last)


def test_calibration_keeps_the_ranking(model):
    plain = ItemKNN().fit(SEQS).recommend(HISTS[:5], k=5)
    assert model.recommend(HISTS[:5], k=5) == plain and model.temperature_ > 0


def test_revenue_blend_moves_from_relevance_to_expected_revenue(model):
    hist = HISTS[2]
    relevance = [r["item_id"] for r in model.recommend([hist], k=5)[0]]
    assert [r["item_id"] for r in model.recommend([hist], k=5, objective="revenue", blend=0.0)[0]] == relevance
    recs = model.recommend([hist], k=len(ITEMS), objective="revenue", blend=1.0, order="value")[0]
    ev = [r["expected_value"] for r in recs]
    assert ev == sorted(ev, reverse=True)
    assert all(r["expected_value"] == pytest.approx(r["p_buy"] * PRICES[r["item_id"]]) for r in recs)
    assert abs(sum(r["p_buy"] for r in model.recommend([[]], k=len(ITEMS), exclude_seen=False,
                                                     objective="revenue")[0]) - 1) < 1e-6


def test_profit_uses_known_costs_and_the_stated_margin_elsewhere(model):
    recs = model.recommend([HISTS[3]], k=len(ITEMS), objective="profit", assumed_margin=0.2)[0]
    for r in recs:
        price = PRICES[r["item_id"]]
        cost = COSTS.get(r["item_id"], 0.8 * price)
        assert r["expected_value"] == pytest.approx(r["p_buy"] * (price - cost))
    no_margin = model.recommend([HISTS[3]], k=len(ITEMS), objective="profit", order="value")[0]
    known = [r for r in no_margin if r["expected_value"] is not None]
    assert {r["item_id"] for r in known} == {i for i in COSTS if i not in HISTS[3]}
    assert [r["item_id"] for r in no_margin[: len(known)]] == [r["item_id"] for r in known]


def test_the_value_slate_is_shown_most_likely_first(model):
    for hist in HISTS[:6]:
        by_value = model.recommend([hist], k=4, objective="revenue", order="value")[0]
        shown = model.recommend([hist], k=4, objective="revenue")[0]  # order="relevance", the default
        assert sorted(r["item_id"] for r in shown) == sorted(r["item_id"] for r in by_value)
        p = [r["p_buy"] for r in shown]
        assert p == sorted(p, reverse=True)


def test_relevance_order_keeps_pins_first_and_follows_boosts(model):
    from shopml.recommend.rules import Rules

    hist = HISTS[2]
    shown = model.recommend([hist], k=4, objective="revenue")[0]
    last, first = shown[-1]["item_id"], shown[0]["item_id"]
    boosted = model.recommend([hist], k=4, objective="revenue", rules=Rules(boost={last: 50.0}))[0]
    assert boosted[0]["item_id"] == last
    pinned = model.recommend([hist], k=4, objective="revenue", rules=Rules(pinned=(last,)))[0]
    assert pinned[0]["item_id"] == last and pinned[0]["pinned"] and pinned[1]["item_id"] == first
    p = [r["p_buy"] for r in pinned[1:]]
    assert p == sorted(p, reverse=True)


@pytest.mark.parametrize("bad", [dict(objective="margin"), dict(objective="revenue", blend=1.5),
                                 dict(objective="profit", assumed_margin=1.0), dict(objective="profit", order="price")])
def test_bad_objective_options_are_config_errors(model, bad):
    with pytest.raises(ConfigError):
        model.recommend([HISTS[0]], k=3, **bad)


def test_temperature_survives_save_load(model, tmp_path):
    model.save(tmp_path / "m")
    again = ItemKNN.load(tmp_path / "m")
    assert again.temperature_ == model.temperature_
    assert again.recommend([HISTS[1]], k=4, objective="profit", assumed_margin=0.3) == \
        model.recommend([HISTS[1]], k=4, objective="profit", assumed_margin=0.3)


def test_units_per_purchase_scale_the_value_and_survive_save_load_and_refresh(tmp_path):
    qty = {**{i: 12.0 for i in ITEMS[:3]}, ITEMS[3]: 2.0, ITEMS[4]: 2.0}  # the rest unknown
    m = ItemKNN().fit(SEQS, item_prices=PRICES, item_quantities=qty)
    median = 12.0  # of the known quantities: what an item without one is assumed to sell
    recs = m.recommend([HISTS[4]], k=len(ITEMS), objective="revenue", blend=1.0)[0]
    for r in recs:
        assert r["expected_value"] == pytest.approx(r["p_buy"] * PRICES[r["item_id"]] * qty.get(r["item_id"], median))
    m.save(tmp_path / "m")
    again = ItemKNN.load(tmp_path / "m")
    np.testing.assert_array_equal(again.item_quantities_, m.item_quantities_)
    again.refresh(SEQS, item_quantities={ITEMS[5]: 3.0})
    assert again.item_quantities_[again._item_index[ITEMS[5]]] == 3.0
    assert again.item_quantities_[again._item_index[ITEMS[0]]] == 12.0
