"""Metrics: hand-computed cases, then hypothesis against slow obvious references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from shopml.evaluation.metrics import (
    auc,
    hit_rate,
    log_loss,
    mae,
    mrr,
    ndcg,
    rank_all,
    recall,
    rmse,
    target_ranks,
    wape,
)

# ------------------------------------------------------------------ hand-computed cases


def test_ranks_by_hand_with_pessimistic_ties():
    scores = torch.tensor(
        [
            [0.0, 0.9, 0.5, 0.1, 0.5],  # target 2 (0.5): 0.9 and the tied 0.5 beat it -> 3
            [0.0, 0.2, 0.2, 0.7, 0.1],  # target 3 (0.7): best -> 1
            [1.0, 1.0, 1.0, 1.0, 1.0],  # constant model: worst rank 5
        ]
    )
    assert target_ranks(scores, torch.tensor([2, 3, 4])).tolist() == [3, 1, 5]


def test_ranks_exclude_as_mask_and_as_padded_indices():
    scores = torch.tensor([[0.0, 0.9, 0.5, 0.1, 0.5], [0.0, 0.8, 0.9, 0.7, 0.1]])
    targets = torch.tensor([2, 3])
    hist = torch.tensor([[1, 0, 0], [2, 3, 2]])  # row 2 history holds its own target: kept
    # row 1: item 1 excluded -> only the tie at 4 beats 0.5 -> 2; row 2: 2 excluded, 1 beats -> 2
    assert target_ranks(scores, targets, exclude=hist).tolist() == [2, 2]
    mask = torch.zeros_like(scores, dtype=torch.bool)
    mask[0, 1] = mask[1, 2] = mask[1, 3] = True
    assert target_ranks(scores, targets, exclude=mask).tolist() == [2, 2]


def test_multi_target_ranks_and_recall_by_hand():
    scores = torch.tensor([[0.0, 0.9, 0.5, 0.1, 0.3]])
    ranks = target_ranks(scores, torch.tensor([[1, 4, 0]]))  # 0 = padding target
    assert ranks.tolist() == [[1, 3, 0]]
    assert recall(ranks, 2) == 0.5
    assert recall(ranks, 3) == 1.0


def test_rank_metrics_by_hand():
    ranks = torch.tensor([1, 2, 5, 30])
    assert hit_rate(ranks, 5) == 0.75
    assert ndcg(ranks, 5) == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 4)
    assert mrr(ranks, 20) == pytest.approx((1 + 0.5 + 0.2) / 4)
    assert recall(ranks, 1) == 0.25


def test_point_metrics_by_hand():
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75  # 3 of 4 pairs ordered
    assert auc([0, 1, 1], [0.5, 0.5, 0.9]) == 0.75  # pairs: tie (1/2) + win (1)
    assert math.isnan(auc([1, 1], [0.2, 0.3]))
    assert log_loss([1, 0, 1], [0.5, 0.5, 1.0]) == pytest.approx(2 * math.log(2) / 3, abs=1e-9)
    assert mae([1, 2, 3], [1, 4, 0]) == pytest.approx(5 / 3)
    assert rmse([1, 2, 3], [1, 4, 0]) == pytest.approx(math.sqrt(13 / 3))
    assert wape([2, 0, 8], [1, 1, 8]) == pytest.approx(0.2)
    assert math.isnan(wape([0, 0], [1, 1]))


def test_auc_one_class_is_nan_not_half():
    # Undefined (sklearn raises). intent.tabular's old copy said 0.5, which reads as a chance-level model.
    assert math.isnan(auc([0, 0, 0], [0.1, 0.5, 0.9]))
    assert math.isnan(auc([1], [0.3]))
    assert math.isnan(auc([], []))


def test_equal_auc_is_an_equal_float():
    # Two orderings, each with 11 of the 3 x 5 pairs won: an early-stopping monitor must see a
    # tie, not float noise (sklearn's trapezoid sum can differ in the last bit).
    y = [1, 1, 1, 0, 0, 0, 0, 0]
    a = auc(y, [0.9, 0.6, 0.3, 0.8, 0.5, 0.4, 0.2, 0.1])  # P N P N N P N N
    b = auc(y, [0.9, 0.6, 0.3, 0.95, 0.5, 0.25, 0.2, 0.1])  # N P P N P N N N
    assert a == b == 11 / 15


def test_nan_scores_rank_worst():
    scores = torch.tensor([[0.0, float("nan"), 0.2, 0.1]])
    assert target_ranks(scores, torch.tensor([1])).tolist() == [4]


def test_rank_all_batches_and_never_ranks_padding():
    n_items, calls = 6, []
    weights = torch.arange(n_items + 1, dtype=torch.float32)
    weights[0] = 100.0  # the padding column scores highest: it must still not count

    def score_fn(hist):
        calls.append(len(hist))
        return weights.expand(len(hist), -1)

    hist = torch.tensor([[6, 0], [1, 2], [5, 6], [3, 0], [2, 0]])
    targets = torch.tensor([5, 6, 4, 3, 6])
    ranks = rank_all(score_fn, hist, targets, exclude_seen=True, batch_size=2)
    assert ranks.tolist() == [1, 1, 1, 4, 1]  # row 4: items 4, 5, 6 beat target 3
    assert calls == [2, 2, 1]
    ranks_all = rank_all(score_fn, hist, targets, exclude_seen=False, batch_size=4)
    assert ranks_all.tolist() == [2, 1, 3, 4, 1]


def test_rank_all_passes_rows_when_asked():
    seen = []

    def score_fn(hist, rows):
        seen.extend(rows.tolist())
        return torch.rand(len(hist), 5)

    rank_all(score_fn, np.zeros((7, 3), dtype=np.int64), np.ones(7, dtype=np.int64), batch_size=3, pass_rows=True)
    assert seen == list(range(7))


# ------------------------------------------------------------- slow obvious references


def ref_rank(row, target, excluded):
    others = [j for j in range(len(row)) if j != target and j not in excluded]
    return 1 + sum(1 for j in others if row[j] >= row[target])


def ref_auc(y, p):
    pos = [pi for yi, pi in zip(y, p) if yi == 1]
    neg = [pi for yi, pi in zip(y, p) if yi == 0]
    total = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    return total / (len(pos) * len(neg))


@st.composite
def ranking_batches(draw):
    b = draw(st.integers(1, 6))
    n = draw(st.integers(2, 9))
    # Few distinct values so ties are common.
    scores = draw(st.lists(st.lists(st.integers(0, 3), min_size=n, max_size=n), min_size=b, max_size=b))
    targets = draw(st.lists(st.integers(1, n - 1), min_size=b, max_size=b))
    hist = draw(st.lists(st.lists(st.integers(0, n - 1), min_size=3, max_size=3), min_size=b, max_size=b))
    return np.array(scores, dtype=np.float32), np.array(targets), np.array(hist)


@settings(max_examples=150, deadline=None)
@given(ranking_batches())
def test_target_ranks_match_reference(batch):
    scores, targets, hist = batch
    got = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets), exclude=torch.from_numpy(hist))
    want = [ref_rank(s, t, {h for h in hs if h != 0} - {t}) for s, t, hs in zip(scores, targets, hist)]
    assert got.tolist() == want
    plain = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets))
    assert plain.tolist() == [ref_rank(s, t, set()) for s, t in zip(scores, targets)]


@settings(max_examples=100, deadline=None)
@given(ranking_batches(), st.integers(1, 4))
def test_rank_all_matches_reference(batch, batch_size):
    scores, targets, hist = batch
    table = torch.from_numpy(scores)
    ranks = rank_all(lambda h, rows: table[rows], hist, targets, True, batch_size, pass_rows=True)
    # rank_all also drops padding column 0.
    want = [ref_rank(s, t, ({h for h in hs} | {0}) - {t}) for s, t, hs in zip(scores, targets, hist)]
    assert ranks.tolist() == want


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30), st.integers(1, 25))
def test_rank_metrics_match_reference(ranks, k):
    n = len(ranks)
    assert hit_rate(ranks, k) == pytest.approx(sum(r <= k for r in ranks) / n)
    assert ndcg(ranks, k) == pytest.approx(sum(1 / math.log2(r + 1) for r in ranks if r <= k) / n)
    assert mrr(ranks, k) == pytest.approx(sum(1 / r for r in ranks if r <= k) / n)
    assert recall(ranks, k) == hit_rate(ranks, k)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 12), min_size=4, max_size=4), min_size=1, max_size=8), st.integers(1, 12))
def test_multi_target_recall_matches_reference(rows, k):
    per_row = [sum(0 < r <= k for r in row) / sum(r > 0 for r in row) for row in rows if any(r > 0 for r in row)]
    got = recall(np.array(rows), k)
    if per_row:
        assert got == pytest.approx(sum(per_row) / len(per_row))
    else:
        assert math.isnan(got)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 5)), min_size=2, max_size=40))
def test_auc_matches_pairwise_reference_with_ties(pairs):
    y = [a for a, _ in pairs]
    p = [b / 5 for _, b in pairs]
    if len(set(y)) < 2:
        assert math.isnan(auc(y, p))
    else:
        assert auc(y, p) == pytest.approx(ref_auc(y, p))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.integers(0, 1), st.floats(0.001, 0.999)),
        min_size=1,
        max_size=30,
    )
)
def test_point_metrics_match_reference(rows):
    y = [r[0] for r in rows]
    yh = [r[1] for r in rows]
    n = len(rows)
    assert mae(y, yh) == pytest.approx(sum(abs(a - b) for a, b in zip(y, yh)) / n)
    assert rmse(y, yh) == pytest.approx(math.sqrt(sum((a - b) ** 2 for a, b in zip(y, yh)) / n))
    denom = sum(abs(a) for a in y)
    if denom > 1e-6:  # a subnormal total would overflow both sides
        assert wape(y, yh) == pytest.approx(sum(abs(a - b) for a, b in zip(y, yh)) / denom)
    lab = [r[2] for r in rows]
    prob = [r[3] for r in rows]
    ref = -sum(math.log(p) if t else math.log(1 - p) for t, p in zip(lab, prob)) / n
    assert log_loss(lab, prob) == pytest.approx(ref)


@settings(max_examples=100, deadline=None)
@given(ranking_batches(), st.data())
def test_multi_target_ranks_match_reference(batch, data):
    scores, _, hist = batch
    n = scores.shape[1]
    targets = np.array(data.draw(st.lists(st.lists(st.integers(0, n - 1), min_size=3, max_size=3),
                                          min_size=len(scores), max_size=len(scores))))
    got = target_ranks(torch.from_numpy(scores), torch.from_numpy(targets), exclude=torch.from_numpy(hist))
    for row, s, ts, hs in zip(got.tolist(), scores, targets, hist):
        keep = {int(t) for t in ts if t != 0}
        excluded = {int(h) for h in hs if h != 0} - keep
        assert row == [ref_rank(s, t, excluded) if t != 0 else 0 for t in ts]
