"""Full-ranking leave-one-out protocols against a slow reference; batching bounds memory."""

from __future__ import annotations

import numpy as np
import torch

from shopml.evaluation.protocols import auto_batch_size, evaluate, rank_targets


def _reference_rank(scores: np.ndarray, target: int, history: set[int], exclude: bool) -> int:
    better = 0
    for item in range(1, len(scores)):
        if item == target or (exclude and item in history):
            continue
        better += scores[item] >= scores[target]
    return better + 1


def test_ranks_match_slow_reference_under_both_protocols():
    rng = np.random.default_rng(0)
    n_users, n_items = 40, 30
    lens = rng.integers(1, 8, n_users)
    indptr = np.concatenate([[0], np.cumsum(lens)])
    items = rng.integers(1, n_items + 1, indptr[-1])
    targets = rng.integers(0, n_items + 1, n_users)  # some 0 = no target
    table = torch.from_numpy(rng.integers(0, 5, (n_users + 1, n_items + 1)).astype(np.float32))  # many ties
    ranks = rank_targets(lambda h, u: table[u].clone(), indptr, items, targets, batch_size=7, n_items=n_items)
    rows = np.flatnonzero(targets > 0)
    for proto, exclude in (("A", True), ("B", False)):
        want = [_reference_rank(table[u + 1].numpy(), targets[u], set(items[indptr[u]:indptr[u + 1]]), exclude)
                for u in rows]
        assert ranks[proto].tolist() == want


def test_metrics_keys_and_perfect_model():
    indptr, items = np.array([0, 2, 3]), np.array([1, 2, 3])
    targets = np.array([3, 1])

    def oracle(h, u):
        s = torch.zeros(len(h), 4)
        s[torch.arange(len(h)), torch.from_numpy(targets[(u - 1).numpy()])] = 1.0
        return s

    res = evaluate(oracle, indptr, items, targets, n_items=3)
    assert res["A"]["hr@5"] == res["B"]["ndcg@10"] == res["A"]["mrr@20"] == 1.0
    assert res["A"]["n_users"] == 2


def test_score_calls_never_see_all_users_times_all_items():
    n_items, n_users = 200_000, 300
    seen = []

    def score(h, u):
        seen.append(len(h))
        return torch.zeros(len(h), n_items + 1)

    indptr = np.arange(n_users + 1)
    rank_targets(score, indptr, np.ones(n_users, dtype=np.int64), np.full(n_users, 2), n_items=n_items)
    assert max(seen) == auto_batch_size(n_items) < n_users and sum(seen) == n_users
    assert max(seen) * (n_items + 1) <= 1 << 24
