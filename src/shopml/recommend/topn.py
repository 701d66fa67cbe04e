"""A precomputed top-N list for every known user, read under a request's business rules.

Answering a known user by scoring means a network forward and a top-k over the whole
catalogue per request. The service instead builds these lists once, when it loads a run. They
hold the scores :meth:`~shopml.recommend.base.SequentialRecommender.recommend` would compute:
the user's stored history, the repeat gate, history items excluded.

A request's rules (exclusions, price range, per-category cap) are applied by walking down the
list. When the walk fills the slate before the list runs out, the answer is exactly the one
scoring gives: that answer is the same walk over the fully sorted scores. Otherwise the caller
scores the user as before (:meth:`TopN.answer` returns None). That happens when the rules
starve the list, or when a boost or a pin could bring in an item from outside it.

Example:
    >>> from shopml.recommend.baselines import MostPopular
    >>> from shopml.data.sequences import sequences_from_lists
    >>> m = MostPopular().fit(sequences_from_lists([["a", "b"], ["b", "c"], ["b"]], user_ids=["u", "v", "w"]))
    >>> top = TopN.build(m, n=2)
    >>> [r["item_id"] for r in top.answer("u", 1)]
    ['c']
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

__all__ = ["TopN"]

log = logging.getLogger(__name__)


class TopN:
    """``items [U, N]`` (1-based item indices, best first) with their ``scores`` for the
    model's known users; ``n_valid [U]`` counts the finite scores of each list (fewer than N:
    the list holds every item the user may get; -1: never answered from the list)."""

    def __init__(self, model, items: np.ndarray, scores: np.ndarray, n_valid: np.ndarray):
        self.model, self.items, self.scores, self.n_valid = model, items, scores, n_valid
        self._rows = model._user_index  # pseudonymized user id -> row
        self._cats = [""] + list(model.item_categories_)
        self._prices = np.asarray(model.item_prices_, dtype=np.float64)

    @classmethod
    def build(cls, model, n: int = 256, *, batch: int = 1024, max_users: int = 100_000) -> "TopN | None":
        """The lists of every known user of ``model`` (None when the model does not serve known
        users, or has more than ``max_users``). Building costs one scoring pass over the known
        users, paid at every load: 12 s for Beauty's 22,363 users on one CPU thread, so past
        ``max_users`` the service scores every request instead."""
        users = list(getattr(model, "user_ids_", []) or [])
        if not getattr(model, "serves_known_users", False) or not users or len(users) > max_users:
            return None
        n = min(n, model.n_items_)
        items = np.zeros((len(users), n), dtype=np.int32)
        scores = np.full((len(users), n), -np.inf, dtype=np.float32)
        n_valid = np.zeros(len(users), dtype=np.int32)
        for s in range(0, len(users), batch):
            hist, rows, _ = model._resolve(users[s : s + batch])
            sc = model.score_batch(hist, rows)
            if model.exclude_seen_default:
                sc.scatter_(1, hist, float("-inf"))
            top = sc.topk(n, dim=1)
            items[s : s + batch] = top.indices.numpy()
            scores[s : s + batch] = top.values.numpy()
            valid = torch.isfinite(top.values).sum(1).numpy()
            if model.popularity_fallback:  # answers flagged as fallbacks stay with the model
                valid = np.where((hist > 0).any(1).numpy(), valid, -1)
            n_valid[s : s + batch] = valid
        log.info("top-%d lists built for %d known users", n, len(users))
        return cls(model, items, scores, n_valid)

    def answer(self, user: str, k: int, rules=None) -> list[dict] | None:
        """The slate of the pseudonymized ``user`` under ``rules`` (a
        :class:`~shopml.recommend.rules.Rules` or None), as ``recommend`` gives it, or None when
        the list cannot decide it."""
        row = self._rows.get(user)
        if row is None or self.n_valid[row] < 0:
            return None
        if rules is not None and (rules.boost or rules.pinned or rules.new_slots):
            return None  # a boosted, pinned or new item may come from outside the list
        n = int(self.n_valid[row])
        complete = n < self.items.shape[1]
        k = min(k, self.model.n_items_)
        items, scores = self.items[row, :n].tolist(), self.scores[row, :n].tolist()
        if rules is None:
            chosen = list(range(min(k, n)))
        else:
            chosen = self._walk(items, k, rules)
        if len(chosen) < k and not complete:
            return None
        ids = self.model.item_ids_
        return [{"item_id": ids[items[c] - 1], "score": float(scores[c])} for c in chosen]

    def _walk(self, items: list[int], k: int, rules) -> list[int]:
        """Positions in ``items`` that the rules keep, best first, until the slate is full (the
        greedy walk :meth:`~shopml.recommend.rules.Rules.select_many` makes over all items)."""
        index = self.model._item_index
        excluded = {index[i] for i in map(str, rules.exclude) if i in index}
        lo, hi = rules.price_range if rules.price_range is not None else (None, None)
        lo = -math.inf if lo is None else lo
        hi = math.inf if hi is None else hi
        cap, count, chosen = rules.max_per_category, {}, []
        for pos, j in enumerate(items):
            if len(chosen) >= k:
                break
            if j in excluded:
                continue
            if rules.price_range is not None:
                p = self._prices[j]
                if math.isnan(p) or not lo <= p <= hi:
                    continue
            c = self._cats[j]
            if cap is not None and c and count.get(c, 0) >= cap:
                continue
            count[c] = count.get(c, 0) + 1
            chosen.append(pos)
        return chosen
