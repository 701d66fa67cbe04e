"""Set-target metrics and the time-window protocol, checked against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shopml.evaluation.metrics import hit_rate_sets, ndcg_sets
from shopml.evaluation.protocols import evaluate_windows


def test_ndcg_sets_by_hand():
    # row 1: relevant at ranks 1 and 3 of 2 relevant; row 2: one relevant at rank 2
    hits = [[1, 0, 1], [0, 1, 0]]
    d = [1 / math.log2(r + 1) for r in (1, 2, 3)]
    want = ((d[0] + d[2]) / (d[0] + d[1]) + d[1] / d[0]) / 2
    assert ndcg_sets(hits, [2, 1], 3) == pytest.approx(want)
    assert hit_rate_sets(hits, 1) == 0.5 and hit_rate_sets(hits, 2) == 1.0


def test_ndcg_sets_is_one_for_a_perfect_ranking_and_caps_ideal_at_k():
    assert ndcg_sets([[1, 1]], [5], 2) == pytest.approx(1.0)  # 5 relevant, only 2 slots
    assert ndcg_sets([[0, 0]], [1], 2) == 0.0


def _pop_scores(values):
    s = torch.tensor([float("-inf"), *values])
    return lambda hist, users: s.expand(len(hist), -1).clone()


def test_windows_protocols_by_hand():
    # items 1..4 by popularity 4 > 3 > 2 > 1; user 0 bought 1 before and buys {1, 3} after,
    # user 1 has history [2] and buys {4} after, user 2 has no future purchase (skipped)
    score = _pop_scores([4.0, 3.0, 2.0, 1.0])
    hist_ptr, hist = np.array([0, 1, 2, 3]), np.array([1, 2, 3])
    tgt_ptr, tgt = np.array([0, 2, 3, 3]), np.array([1, 3, 4])
    r = evaluate_windows(score, hist_ptr, hist, tgt_ptr, tgt, k=2)
    # B: user 0 ranks [1, 2]: hit at 1 of 2 relevant -> 1 / (1 + 1/log2 3); user 1 ranks [1, 2]: miss
    assert r["B"]["n_users"] == 2
    assert r["B"]["hr@2"] == 0.5
    assert r["B"]["ndcg@2"] == pytest.approx((1 / (1 + 1 / math.log2(3))) / 2)
    # A: user 0 loses item 1 (history) as candidate and target: ranks [2, 3], target {3} at 2
    #    user 1 loses item 2: ranks [1, 3], target {4}: miss
    assert r["A"]["n_users"] == 2
    assert r["A"]["hr@2"] == 0.5
    assert r["A"]["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 2)


def test_windows_skip_users_whose_only_targets_are_history_items_under_a():
    score = _pop_scores([1.0, 2.0])
    r = evaluate_windows(score, np.array([0, 1]), np.array([1]), np.array([0, 1]), np.array([1]), k=1)
    assert r["A"]["n_users"] == 0 and r["B"]["n_users"] == 1
    assert r["B"]["hr@1"] == 0.0  # item 2 outranks the re-bought item 1
