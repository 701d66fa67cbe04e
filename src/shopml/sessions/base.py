"""Session models on the one next-item base (:class:`shopml.recommend.base.SequentialRecommender`).

A session model is a next-item recommender that keeps no known users, does not exclude what the
session already clicked (re-clicks are common), and answers a session with no known item by
training popularity. A subclass implements ``_score_encoded(prefixes)`` on right-aligned
index prefixes (its last ``max_len`` items) and returns ``(B, n_items + 1)`` scores.

Ranking convention (the base's, so every model compares): every training item is ranked; the
rank of the target is 1 + #{other items with score >= the target's score} (ties count against
the model); a target never seen in training has rank = inf (a miss).

Example:
    >>> from shopml.sessions.baselines import PopularityRecommender
    >>> [r["item_id"] for r in PopularityRecommender().fit([["a", "b"], ["b"]]).recommend([[]], k=1)[0]]
    ['b']
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from shopml.data.sequences import IdMap, encode_lists
from shopml.evaluation.protocols import metrics_from_ranks
from shopml.evaluation.protocols import rank_targets as protocol_ranks
from shopml.recommend.base import SequentialRecommender

__all__ = ["SessionRankerBase"]


class SessionRankerBase(SequentialRecommender):
    """The base's session defaults plus HR/NDCG/MRR@K evaluation on (prefix, target) cases."""

    serves_known_users = False
    exclude_seen_default = False
    popularity_fallback = True
    max_len = 50  # prefixes longer than this keep their last ``max_len`` items

    def score_batch(self, hist: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        return super().score_batch(hist[:, -self.max_len:], users)

    def _score(self, hist: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        return self._score_encoded(hist.numpy())

    def _score_encoded(self, prefixes: np.ndarray) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def rank_targets(self, prefixes: Sequence[Sequence], targets: Sequence, batch_size: int = 1024) -> np.ndarray:
        """Rank of each target among all training items (float; inf = unknown target), under
        the shared full-ranking protocol with nothing excluded (protocol B)."""
        self._check_fitted()
        item_map = IdMap(self.item_ids_)
        tgt = item_map.encode(list(targets))
        indptr, items = encode_lists(item_map, prefixes)
        # Batches of similar length: a GRU then runs few padding steps.
        lengths = np.diff(indptr)
        order = np.argsort(lengths, kind="stable")
        sorted_ptr = np.concatenate([[0], np.cumsum(lengths[order])]).astype(np.int64)
        flat = items[np.concatenate([np.arange(indptr[r], indptr[r + 1]) for r in order])] if len(items) else items
        got = protocol_ranks(self.score_batch, sorted_ptr, flat, tgt[order], protocols=("B",),
                             users=np.zeros(len(order), dtype=np.int64), batch_size=batch_size,
                             n_items=self.n_items_)["B"]
        ranks = np.full(len(tgt), np.inf)
        ranks[order[tgt[order] > 0]] = got  # targets unknown to training stay inf (a miss)
        return ranks

    def evaluate(self, prefixes: Sequence[Sequence], targets: Sequence, k: int = 20) -> dict:
        """HR@k (the session papers' Recall@k: one target per case), NDCG@k and MRR@k over
        test cases, plus the seconds it took."""
        t0 = time.perf_counter()
        ranks = self.rank_targets(prefixes, targets)
        return {**metrics_from_ranks(ranks, ks=(k,)), "n_cases": int(len(ranks)),
                "eval_seconds": round(time.perf_counter() - t0, 2)}

