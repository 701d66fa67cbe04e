"""The revenue benchmark's pieces: the simulator's true next-item probabilities, slate values
by hand, and that ranking by true expected value is what the blend reaches at 1."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from shopml.benchmarks.revenue import recommend_blend, slate_values, truth_slates
from shopml.data.simulate import simulate_shop
from shopml.evaluation.metrics import expected_calibration_error
from shopml.recommend.value import value_keys


def test_true_next_view_probabilities_match_the_simulated_views():
    shop = simulate_shop(n_users=400, n_items=60, seed=5)
    t = shop.truth
    views = shop.events.filter(pl.col("event_type") == "view").sort("user_id", "timestamp")
    u = np.array([int(x[1:]) for x in views["user_id"].to_list()])
    pos = {raw: i for i, raw in enumerate(t.item_ids)}
    it = np.array([pos[x] for x in views["item_id"].to_list()])
    same = u[1:] == u[:-1]
    p = t.next_view_probs(u[1:][same], it[:-1][same])
    nxt = it[1:][same]
    assert np.allclose(p.sum(1), 1.0)
    y = np.zeros_like(p)
    y[np.arange(len(nxt)), nxt] = 1
    assert expected_calibration_error(y.ravel(), p.ravel(), n_bins=20) < 0.005  # the truth is calibrated
    # and it is informative: the planted successor carries most of the mass it should
    assert np.log(p[np.arange(len(nxt)), nxt]).mean() > np.log(1 / 60) + 1.0


def test_slate_values_by_hand():
    slates = np.array([[2, 0], [1, -1]])
    p = np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    r = slate_values(slates, p, np.array([1.0, 1.0, 2.0]), np.array([2, 0]))
    assert np.isclose(r["expected_value"], ((0.7 * 2 + 0.1) + 0.4) / 2)
    assert r["hr"] == 0.5 and np.isclose(r["ndcg"], 0.5)


def test_blend_one_with_true_probabilities_maximizes_expected_profit():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(50), size=30)
    v = rng.uniform(0.5, 20, 50)
    pt = torch.from_numpy(np.concatenate([np.zeros((30, 1)), p], 1))
    vt = torch.from_numpy(np.concatenate([[np.nan], v]))
    best = np.sort(p * v, axis=1)[:, -10:].sum(1).mean()
    for blend in (0.0, 0.5, 1.0):
        top = value_keys(pt, vt, blend).topk(10, dim=1).indices.numpy() - 1
        got = slate_values(top, p, v, np.zeros(30, dtype=np.int64))["expected_value"]
        assert got <= best + 1e-12
        if blend == 1.0:
            assert np.isclose(got, best)


def test_recommend_blend_respects_the_ndcg_budget():
    rows = [{"blend": 0.0, "ndcg@10": 0.10, "expected_profit@10": 1.0},
            {"blend": 0.3, "ndcg@10": 0.097, "expected_profit@10": 1.2},
            {"blend": 0.6, "ndcg@10": 0.094, "expected_profit@10": 1.5}]
    assert [recommend_blend(rows, loss)["blend"] for loss in (0.05, 0.07, 0.0)] == [0.3, 0.6, 0.0]


def test_revenue_benchmark_end_to_end_on_a_tiny_shop(tmp_path):
    import json

    from shopml.cli import main

    out = tmp_path / "rev.json"
    main(["benchmark", "revenue", "--users", "200", "--items", "40", "--epochs", "2", "--out", str(out)])
    doc = json.loads(out.read_text())
    test = [r for r in doc["rows"] if r["split"] == "test" and r["ranker"] == "sasrec"]
    truth = [r for r in doc["rows"] if r["split"] == "test" and r["ranker"] == "truth"]
    assert {r["objective"] for r in test} == {"relevance", "profit", "revenue"}
    # the truth's own ranking is the ceiling: no blend of the model's beats the truth's blend 1
    ceiling = next(r for r in truth if r["objective"] == "profit" and r["blend"] == 1.0)["expected_profit@10"]
    assert max(r["expected_profit@10"] for r in test) <= ceiling + 1e-9
    assert doc["truth_profit_gain"] >= 0
    # the taste posterior ranks the same grid: below the truth, and its gain is reported
    bayes = [r for r in doc["rows"] if r["split"] == "test" and r["ranker"] == "bayes"]
    assert len(bayes) == len(truth) == len(test)
    assert max(r["expected_profit@10"] for r in bayes) <= ceiling + 1e-9
    assert doc["bayes_profit_gain"] >= 0 and 0 <= doc["bayes_recommended_blend"]["profit"] <= 1
    # the per-seed ceilings start with this seed, and agree with its truth rows at blend 1
    seeds = doc["ceilings_by_seed"]
    assert [c["seed"] for c in seeds] == [0, 1, 2, 3, 4]
    at = {(r["objective"], r["blend"], r["order"]): r["expected_profit@10"] for r in truth}
    gain = at["profit", 1.0, "relevance"] / at["relevance", 0.0, "relevance"] - 1
    assert np.isclose(seeds[0]["truth_profit_gain"], gain)
    assert all(c["truth_profit_gain"] >= 0 for c in seeds)
    for order in ("relevance", "value"):
        assert sorted(r["blend"] for r in test if r["objective"] == "profit" and r["order"] == order) == \
            [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]
    chosen = [r for r in test if r["objective"] == "profit" and r["recommended"]]
    assert len(chosen) == 1 and chosen[0]["blend"] == doc["recommended_blend"]["profit"]
    assert chosen[0]["order"] == doc["recommended_order"]["profit"]
    # the two orders show the same slates: equal expected profit, blend by blend
    by = {(r["order"], r["blend"]): r["expected_profit@10"] for r in test if r["objective"] == "profit"}
    assert all(np.isclose(by["relevance", b], by["value", b]) for _, b in by)
    for r in test:
        assert r["expected_profit@10"] > 0 and r["expected_revenue@10"] >= r["expected_profit@10"]
        assert 0 <= r["ndcg@10"] <= r["hr@10"] <= 1


def test_truth_slates_leave_the_history_out_and_rank_by_true_value():
    p = np.array([[0.4, 0.3, 0.2, 0.1]])
    v = np.array([1.0, 1.0, 1.0, 10.0])
    ex = np.array([[True, False, False, False]])
    assert truth_slates(p, v, 0.0, 2, ex).tolist() == [[1, 2]]
    assert truth_slates(p, v, 1.0, 2, ex).tolist() == [[3, 1]]  # 0.1 x 10 beats 0.3 x 1
    assert truth_slates(p, v, 1.0, 2, ex, order="relevance").tolist() == [[1, 3]]  # same slate, likeliest first
