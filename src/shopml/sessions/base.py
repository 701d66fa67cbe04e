"""What every next-click session model shares: popularity fallback, top-k, target ranks
and Recall/MRR@K evaluation. A subclass implements ``_score_encoded(prefixes)`` on
right-aligned index prefixes and returns (B, n_items + 1) scores, column 0 = padding.

Ranking convention (also for the baselines, so numbers compare): every training item is
ranked; the rank of the target is 1 + #{other items with score >= the target's score}
(ties count against the model); a target never seen in training has rank = inf (a miss).

Example:
    >>> from shopml.sessions.baselines import PopularityRecommender
    >>> m = PopularityRecommender().fit([["a", "b"], ["b"]])
    >>> m.recommend([[]], k=1)[0]
    {'items': ['b'], 'scores': [2.0], 'fallback': 'popularity'}
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch

from shopml.sessions.data import ItemIndex, pad_left
from shopml.errors import NotFittedError

__all__ = ["SessionRankerBase", "popularity_counts"]


def popularity_counts(indptr_items: np.ndarray, n_items: int) -> np.ndarray:
    """Count of each item index (length n_items + 1; index 0 stays 0)."""
    c = np.bincount(indptr_items, minlength=n_items + 1).astype(np.float64)
    c[0] = 0.0
    return c


class SessionRankerBase:
    """Shared predict/evaluate for session models (see module docstring)."""

    max_len = 50  # prefixes longer than this keep their last ``max_len`` items at inference

    def _check_fitted(self) -> None:
        if not hasattr(self, "items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")

    def _score_encoded(self, prefixes: np.ndarray) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _scores_with_fallback(self, encoded: list[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
        """Scores (B, n+1) and a bool mask of rows answered by popularity: the prefix has
        no known item, or the model's scores are not finite."""
        known = np.array([len(e) > 0 for e in encoded], dtype=bool)
        pop = torch.as_tensor(self.pop_, dtype=torch.float32)
        pop_row = pop.clone()
        pop_row[0] = -math.inf
        scores = pop_row.expand(len(encoded), -1).clone()
        if known.any():
            rows = np.flatnonzero(known)
            s = self._score_encoded(pad_left([encoded[i] for i in rows], self.max_len)).float()
            ok = torch.isfinite(s[:, 1:]).all(dim=1).numpy()
            scores[torch.from_numpy(rows[ok])] = s[torch.from_numpy(ok)]
            known[rows[~ok]] = False
        return scores, ~known

    def _encode_prefixes(self, sessions: Sequence[Sequence]) -> list[np.ndarray]:
        out = []
        for s in sessions:
            e = self.items_.encode(list(s))
            out.append(e[e > 0])
        return out

    def recommend(self, sessions: Sequence[Sequence], k: int = 20) -> list[dict]:
        """Top-``k`` next items for each session (raw ids, best first).

        An empty session or one of unknown items only gets the most popular items with
        ``fallback: "popularity"``; otherwise ``fallback`` is None.
        """
        self._check_fitted()
        k = max(1, min(int(k), self.items_.n_items))
        encoded = self._encode_prefixes(sessions)
        scores, fb = self._scores_with_fallback(encoded)
        top = torch.topk(scores, k, dim=1)
        return [
            {
                "items": self.items_.decode(top.indices[i].tolist()),
                "scores": [round(float(v), 6) for v in top.values[i]],
                "fallback": "popularity" if fb[i] else None,
            }
            for i in range(len(encoded))
        ]

    def predict(self, sessions: Sequence[Sequence], k: int = 20) -> list[list[str]]:
        """Top-``k`` next item ids per session (see :meth:`recommend`)."""
        return [r["items"] for r in self.recommend(sessions, k)]

    def rank_targets(self, prefixes: Sequence[Sequence], targets: Sequence, batch_size: int = 1024) -> np.ndarray:
        """Rank of each target among all training items (float; inf = unknown target)."""
        self._check_fitted()
        tgt = self.items_.encode(list(targets))
        ranks = np.full(len(tgt), np.inf)
        encoded = self._encode_prefixes(prefixes)
        # Batches of similar length: the GRU then runs few padding steps.
        order = np.argsort([len(e) for e in encoded], kind="stable")
        with torch.no_grad():
            for lo in range(0, len(tgt), batch_size):
                rows = order[lo : lo + batch_size]
                scores, _ = self._scores_with_fallback([encoded[i] for i in rows])
                t = torch.from_numpy(tgt[rows])
                ts = scores.gather(1, t.unsqueeze(1))
                r = (scores >= ts).sum(dim=1).double().numpy()
                ranks[rows] = np.where(tgt[rows] > 0, r, np.inf)
        return ranks

    def evaluate(self, prefixes: Sequence[Sequence], targets: Sequence, k: int = 20) -> dict:
        """Recall@k and MRR@k over test cases, plus the seconds it took."""
        t0 = time.perf_counter()
        ranks = self.rank_targets(prefixes, targets)
        hit = ranks <= k
        return {
            f"recall@{k}": float(hit.mean()),
            f"mrr@{k}": float(np.where(hit, 1.0 / ranks, 0.0).mean()),
            "n_cases": int(len(ranks)),
            "eval_seconds": round(time.perf_counter() - t0, 2),
        }


def build_index(sessions: Sequence[Sequence]) -> tuple[ItemIndex, np.ndarray, np.ndarray]:
    """Item index over ``sessions`` and their CSR encoding ``(index, indptr, items)``."""
    from shopml.sessions.data import encode_sessions

    index = ItemIndex.build(sessions)
    indptr, items = encode_sessions(index, sessions)
    return index, indptr, items
