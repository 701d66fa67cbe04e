"""The one next-item base of every recommender and session model: id maps, known-user
histories, ``recommend``/``predict``, occlusion explanations, popularity fallback, and
``save``/``load`` (:class:`shopml.estimator.Estimator`).

A subclass implements four hooks on 1-based item indices:

* ``_fit_indices(indptr, items, valid_targets)``: learn from CSR histories;
* ``_score(hist, users) -> Tensor[B, n_items + 1]``: scores after left-padded histories
  ``[B, L]`` for user rows ``users`` (0 = unknown user); column 0 is padding;
* ``_state() -> (params, tensors)`` and ``_restore(params, tensors)`` for persistence (the
  folder itself is :class:`shopml.estimator.Estimator`'s ``save``/``load``).

Example:
    >>> from shopml.recommend.baselines import MostPopular
    >>> seqs = sequences_from_lists([["a", "b"], ["b", "c"], ["b"]])
    >>> [r["item_id"] for r in MostPopular().fit(seqs).recommend([["a"]], k=2)[0]]
    ['b', 'c']
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from shopml.data.sequences import Sequences, pad_left, sequences_from_lists
from shopml.errors import ConfigError, DataError
from shopml.estimator import Estimator
from shopml.recommend.refreshing import Refreshing
from shopml.recommend.repeat_gate import gate_logits
from shopml.recommend.rules import Rules
from shopml.recommend.value import (ORDERS, fit_temperature, item_values, probabilities, relevance_first,
                                    value_keys)

__all__ = ["SequentialRecommender", "padded_rows", "sequences_from_lists"]


def padded_rows(indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, width: int) -> torch.Tensor:
    """Rows ``rows`` of CSR histories, their last ``width`` items left-padded
    (:func:`shopml.data.sequences.pad_left`), as a ``LongTensor``."""
    rows = np.asarray(rows, dtype=np.int64)
    return torch.from_numpy(pad_left(items, indptr[rows], indptr[rows + 1], width))


class SequentialRecommender(Refreshing, Estimator):
    """Base estimator: subclasses set ``kind`` and implement the hooks in the module docstring."""

    kind = "base"
    #: Known users are served by id from the histories kept at fit (a user recommender);
    #: a session model keeps none.
    serves_known_users = True
    #: What ``recommend(exclude_seen=None)`` does: a shop does not re-recommend what a user
    #: has, while a session's next click is often an item it already viewed.
    exclude_seen_default = True
    #: Histories with no known item (and rows whose scores are not finite) get the training
    #: popularity instead of the model's scores.
    popularity_fallback = False

    # ------------------------------------------------------------------ fit
    def fit(self, sequences, valid_targets: np.ndarray | None = None, *, item_categories: dict | None = None,
            item_prices: dict | None = None, item_costs: dict | None = None, item_features=None,
            item_quantities: dict | None = None):
        """Learn from chronological histories: a :class:`~shopml.data.sequences.Sequences`, or
        lists of raw item ids (sessions; indexed by :func:`sequences_from_lists`). With
        ``valid_targets`` (one item index per row, 0 = none) neural models early-stop on
        validation NDCG@10. ``item_categories`` (raw item id -> category) enables the
        ``category`` filter, ``item_prices`` (raw item id -> price) the price rule of
        :class:`~shopml.recommend.rules.Rules` and the revenue objective, ``item_costs`` (unit
        costs) the profit objective, ``item_quantities`` (mean units per purchase) scale both
        objectives' values to a line's worth. ``item_features``
        (:class:`~shopml.data.features.ItemFeatures`) feed the models that embed them (SASRec,
        Caser, GRU4Rec) and let :meth:`add_items` score new items; other models keep them unused.
        Returns self."""
        self._check_params()
        if not isinstance(sequences, Sequences):
            sequences = sequences_from_lists(list(sequences))
        indptr = np.asarray(sequences.indptr, dtype=np.int64)
        items = np.asarray(sequences.items, dtype=np.int64)
        if len(items) == 0:
            raise DataError("no events to fit on")
        self.item_ids_ = sequences.item_map.to_list()
        self.n_items_ = len(self.item_ids_)
        self.n_model_items_ = self.n_items_  # items the model's own tables cover (add_items may add more)
        if items.max() > self.n_items_ or items.min() < 1:
            raise DataError("item indices must be 1..n_items")
        self.pop_ = np.bincount(items, minlength=self.n_items_ + 1).astype(np.float64)
        self.pop_[0] = 0.0
        cats = item_categories or {}
        self.item_categories_ = [str(cats.get(i, "")) for i in self.item_ids_]
        prices, costs = item_prices or {}, item_costs or {}
        self.item_prices_ = np.array([np.nan] + [float(prices.get(i, np.nan)) for i in self.item_ids_])
        self.item_costs_ = np.array([np.nan] + [float(costs.get(i, np.nan)) for i in self.item_ids_])
        qty = item_quantities or {}
        self.item_quantities_ = np.array([np.nan] + [float(qty.get(i, np.nan)) for i in self.item_ids_])
        self.temperature_ = 1.0
        self.repeat_gate_ = None  # the window repeat gate (recommend.repeat_gate), fitted by the caller
        self.feature_vocab_ = list(item_features.vocabulary) if item_features is not None else []
        self.item_token_offsets_, self.item_tokens_ = (
            item_features.encode(self.item_ids_) if item_features is not None else (np.zeros(0, np.int64),) * 2)
        self._keep_histories(sequences)
        self.fit_info_ = self._fit_indices(indptr, items, None if valid_targets is None else np.asarray(valid_targets))
        return self

    def _keep_histories(self, sequences) -> None:
        """Known users and their histories, served by user id; session models keep none
        (a session is over once it is in the training data)."""
        if self.serves_known_users:
            self.user_ids_ = [str(u) for u in sequences.user_ids]
            self.hist_indptr_ = np.asarray(sequences.indptr, dtype=np.int64)
            self.hist_items_ = np.asarray(sequences.items, dtype=np.int64)
        else:
            self.user_ids_, self.hist_indptr_, self.hist_items_ = [], np.zeros(1, np.int64), np.zeros(0, np.int64)
        self._build_lookups()

    def _check_params(self) -> None:
        """Check the constructor arguments before any work (subclasses override)."""

    def set_histories(self, sequences) -> "SequentialRecommender":
        """Replace the stored known-user histories (same item map), e.g. with train + validation
        item after early stopping, so known users are served with their latest items."""
        self._check_fitted()
        if sequences.item_map.to_list() != self.item_ids_:
            raise DataError("set_histories needs sequences with the model's item map")
        old_users = list(self.user_ids_)
        self._keep_histories(sequences)
        self._remap_users(old_users)
        return self

    def _remap_users(self, old_users: list) -> None:
        """Hook: the known users are now ``user_ids_`` (were ``old_users``); a model with user
        embeddings moves their rows to match (Caser). Default: nothing to move."""

    def add_items(self, item_ids, item_features=None, *, item_prices: dict | None = None,
                  item_categories: dict | None = None) -> "SequentialRecommender":
        """Add items that have no interactions yet (a cold-start refresh, no retraining): they
        get zero id embeddings, so models with item features score them through their features
        alone (tokens the model never saw are dropped); other models can only rank them last.
        Known item ids are skipped. Returns self.

        Example:
            >>> from shopml.recommend.baselines import MostPopular
            >>> m = MostPopular().fit(sequences_from_lists([["a", "b"]])).add_items(["c"])
            >>> m.item_ids_
            ['a', 'b', 'c']
        """
        self._check_fitted()
        new = [str(i) for i in dict.fromkeys(item_ids) if str(i) not in self._item_index]
        if not new:
            return self
        n_old = self.n_items_
        self.item_ids_ = self.item_ids_ + new
        self.n_items_ = len(self.item_ids_)
        cats, prices = item_categories or {}, item_prices or {}
        self.item_categories_ = list(self.item_categories_) + [str(cats.get(i, "")) for i in new]
        self.item_prices_ = np.concatenate([self.item_prices_, [float(prices.get(i, np.nan)) for i in new]])
        self.item_costs_ = np.concatenate([self.item_costs_, np.full(len(new), np.nan)])
        self.item_quantities_ = np.concatenate([self._quantities(), np.full(len(new), np.nan)])
        if getattr(self, "feature_vocab_", []):
            from shopml.data.features import ItemFeatures

            vocab = ItemFeatures({}, self.feature_vocab_)
            if item_features is not None:
                vocab = ItemFeatures(item_features.item_tokens, self.feature_vocab_)
            off, tok = vocab.encode(new)
            self.item_token_offsets_ = np.concatenate([self.item_token_offsets_, self.item_token_offsets_[-1] + off[2:]])
            self.item_tokens_ = np.concatenate([self.item_tokens_, tok])
        self._build_lookups()
        if self._grow(n_old, len(new)):
            self.n_model_items_ = self.n_items_
        return self

    def _n_tokens(self) -> int:
        """Size of the item-feature vocabulary the model embeds (0: fitted without features)."""
        return len(getattr(self, "feature_vocab_", []))

    def _tables(self, net) -> list:
        """Hook: the :class:`~shopml.recommend.nets.ItemTable` modules of ``net`` that embed
        item tokens (none by default)."""
        return []

    def _set_tokens(self, net) -> None:
        """Hand the item token bags to every item table of ``net``."""
        if self._n_tokens():
            off, tok = torch.from_numpy(self.item_token_offsets_), torch.from_numpy(self.item_tokens_)
            for table in self._tables(net):
                table.set_tokens(off, tok)

    def _grow(self, n_old: int, n_new: int) -> bool:
        """Hook: extend the model's own tables (and ``pop_``) by ``n_new`` items and return True;
        the default grows nothing: the model scores the items it was fitted on, and
        :meth:`score_batch` ranks the added ones after them."""
        return False

    def _build_lookups(self) -> None:
        self._item_index = {i: n + 1 for n, i in enumerate(self.item_ids_)}
        self._user_index = {u: n for n, u in enumerate(self.user_ids_)}

    # ------------------------------------------------------------------ scoring
    def score_batch(self, hist: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """Scores ``[B, n_items + 1]`` after left-padded histories ``[B, L]``; ``users`` are
        1-based user rows (0 = unknown). Column 0 is ``-inf``. Used by evaluation."""
        self._check_fitted()
        if users is None:
            users = torch.zeros(hist.shape[0], dtype=torch.long)
        hist = hist.long()
        n_model = getattr(self, "n_model_items_", self.n_items_)
        if n_model < self.n_items_:  # added items mean nothing to a model that did not grow
            hist = hist.masked_fill(hist > n_model, 0)
        with torch.no_grad():
            s = self._score(hist, users.long()).float()
            if getattr(self, "repeat_gate_", None) is not None:  # fitted on a validation window
                s = s + gate_logits(hist, s.shape[1], self.repeat_gate_)
        if s.shape[1] < self.n_items_ + 1:
            # Items added after fit (add_items) that this model cannot score: ranked after
            # every item it knows, still eligible, so k items come back when k are eligible.
            low = s[:, 1:].masked_fill(~torch.isfinite(s[:, 1:]), float("inf")).amin(1, keepdim=True) - 1.0
            s = torch.cat([s, low.expand(-1, self.n_items_ + 1 - s.shape[1])], 1)
        s[:, 0] = float("-inf")
        if self.popularity_fallback:
            fb = self._fallback_rows(hist, s)
            if fb.any():
                s[fb] = self._popularity_row()
        return s

    def _fallback_rows(self, hist: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Rows answered by popularity: no known item, or scores that are not finite."""
        return ~(hist > 0).any(dim=1) | ~torch.isfinite(scores[:, 1:]).all(dim=1)

    def _popularity_row(self) -> torch.Tensor:
        row = torch.zeros(self.n_items_ + 1)
        pop = torch.as_tensor(self.pop_, dtype=torch.float32)
        row[: len(pop)] = pop  # items added after fit have no popularity yet
        row[0] = float("-inf")
        return row

    def _resolve(self, histories) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
        """Padded histories, user rows and index arrays for a mix of known user ids and raw
        item-id lists. Unknown items are skipped with a warning; an unknown user is a DataError."""
        rows, users = [], []
        for n, h in enumerate(histories):
            if isinstance(h, str):
                if h not in self._user_index:
                    raise DataError(f"unknown user id {h!r}", row=n + 1, column="user_id")
                u = self._user_index[h]
                rows.append(self.hist_items_[self.hist_indptr_[u] : self.hist_indptr_[u + 1]])
                users.append(u + 1)
                continue
            idx = [self._item_index.get(str(i), 0) for i in h]
            unknown = [str(i) for i, j in zip(h, idx) if j == 0]
            if unknown:
                warnings.warn(f"history {n + 1}: skipping {len(unknown)} unknown item id(s), e.g. {unknown[0]!r}",
                              stacklevel=3)
            rows.append(np.asarray([j for j in idx if j], dtype=np.int64))
            users.append(0)
        lens = [len(r) for r in rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum(lens)
        flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        width = max(max(lens, default=1), 1)
        return padded_rows(indptr, flat, np.arange(len(rows)), width), torch.tensor(users), rows

    def _filter_mask(self, candidates, category) -> torch.Tensor | None:
        """True for items that may be recommended, or None for all."""
        allowed = None
        if candidates is not None:
            allowed = torch.zeros(self.n_items_ + 1, dtype=torch.bool)
            idx = [self._item_index[str(c)] for c in candidates if str(c) in self._item_index]
            allowed[idx] = True
        if category is not None:
            cat = torch.tensor([False] + [c == str(category) for c in self.item_categories_])
            allowed = cat if allowed is None else allowed & cat
        return allowed

    def recommend(self, histories, k: int = 10, exclude_seen: bool | None = None, candidates=None, *,
                  category: str | None = None, explain: bool = False, rules: Rules | list | None = None,
                  objective: str = "relevance", blend: float = 1.0,
                  assumed_margin: float | None = None, order: str = "relevance") -> list[list[dict]]:
        """Top-``k`` items for each history: a known (pseudonymized) user id, or a list of raw item
        ids given at request time. Returns per history a list of ``{"item_id", "score"}`` dicts,
        plus ``"because"`` (history items whose removal lowers the score most) when ``explain``,
        and ``"fallback": "popularity"`` when the history had no known item (session models).
        ``exclude_seen`` None takes the model's default (``exclude_seen_default``). ``rules``
        (:class:`~shopml.recommend.rules.Rules`: exclusions, price range, per-category cap,
        pinned and boosted items) apply after scoring and before the top-k; pinned items carry
        ``"pinned": True``; a list gives one Rules (or None) per history. ``objective="revenue"`` or ``"profit"`` ranks by
        ``log P + blend x log(value)`` (:mod:`shopml.recommend.value`; P from
        :meth:`calibrate`, value the item's price, or price minus unit cost, the cost assumed
        at ``price x (1 - assumed_margin)`` where unknown) and adds ``"p_buy"`` and
        ``"expected_value"`` to each item; ``order`` sets the order inside that slate:
        ``"relevance"`` (descending P, boosts added, after the pins) or ``"value"`` (the key).

        Example:
            >>> from shopml.recommend.baselines import Markov
            >>> m = Markov().fit(sequences_from_lists([["a", "b"], ["a", "b"], ["c", "a"]]))
            >>> m.recommend([["a"]], k=1)[0][0]["item_id"]
            'b'
        """
        self._check_fitted()
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        if order not in ORDERS:
            raise ConfigError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
        exclude_seen = self.exclude_seen_default if exclude_seen is None else exclude_seen
        hist, users, rows = self._resolve(histories)
        scores = self.score_batch(hist, users)
        fallback = ~(hist > 0).any(dim=1) if self.popularity_fallback else torch.zeros(len(rows), dtype=torch.bool)
        value = None if objective == "relevance" else self._value(scores, objective, blend, assumed_margin)
        # one Rules for every history, or one per history (the service batches requests)
        per_row = list(rules) if isinstance(rules, (list, tuple)) else [rules] * len(rows)
        if len(per_row) != len(rows):
            raise ConfigError(f"rules: give one per history ({len(rows)}), got {len(per_row)}")
        for b, r in enumerate(per_row):
            if r is not None:
                r.boosted((scores if value is None else value[2])[b: b + 1], self._item_index)
        allowed = self._filter_mask(candidates, category)
        if allowed is not None:
            scores[:, ~allowed] = float("-inf")
        if exclude_seen:
            scores.scatter_(1, hist, float("-inf"))
        k = min(k, self.n_items_)
        keys = scores if value is None else value[2].masked_fill(~torch.isfinite(scores), float("-inf"))
        top_i = self._top(keys, k, per_row)
        pins = [{self._item_index[str(i)] for i in r.pinned if str(i) in self._item_index} if r else set()
                for r in per_row]
        if value is not None and order == "relevance":
            top_i = relevance_first(top_i, value[0], per_row, pins, self._item_index)
        out = [self._slate(scores, top_i[b], b, bool(fallback[b]), pins[b], value) for b in range(len(rows))]
        if explain:
            self._explain(out, rows, users, top_i)
        return out

    def _slate(self, scores, top, b: int, fallback: bool, pinned: set, value) -> list[dict]:
        """Row ``b``'s answer: its slate ``top`` (item indices, best first) without the items
        that were ruled out (score -inf), each with its score and flags."""
        extra = {"fallback": "popularity"} if fallback else {}
        return [{"item_id": self.item_ids_[int(i) - 1], "score": float(scores[b, i]), **extra,
                 **({"pinned": True} if int(i) in pinned else {}), **self._value_fields(value, b, int(i))}
                for i in top[torch.isfinite(scores[b, top])]]

    def _value(self, scores, objective, blend, assumed_margin):
        """``(P, value per item, ranking keys)`` of a revenue or profit request."""
        p = probabilities(scores, getattr(self, "temperature_", 1.0))
        values = item_values(objective, self.item_prices_, self.item_costs_, assumed_margin, self._quantities())
        return p, values, value_keys(p, values, blend)

    def _quantities(self) -> np.ndarray:
        """Mean units per purchase per item (NaN where unknown; all unknown for folders saved
        before quantities were kept)."""
        q = getattr(self, "item_quantities_", None)
        return np.full(self.n_items_ + 1, np.nan) if q is None or len(q) != self.n_items_ + 1 else q

    @staticmethod
    def _value_fields(value, b: int, i: int) -> dict:
        if value is None:
            return {}
        p, v = float(value[0][b, i]), float(value[1][i])
        return {"p_buy": p, "expected_value": p * v if math.isfinite(v) else None}

    def calibrate(self, sequences, targets, *, max_rows: int = 2000, seed: int = 0) -> "SequentialRecommender":
        """Fit the temperature of P(next = item | history) = softmax(score / T) on validation
        targets (one item index per row of ``sequences``, 0 = none; at most ``max_rows`` rows,
        drawn with ``seed``). Ranking is unchanged; probabilities, and the revenue and profit
        objectives, use it."""
        self._check_fitted()
        rows = np.flatnonzero(np.asarray(targets) > 0)
        if len(rows) == 0:
            raise DataError("calibrate needs at least one validation target")
        rows = np.sort(np.random.default_rng(seed).permutation(rows)[:max_rows])
        indptr, items = np.asarray(sequences.indptr), np.asarray(sequences.items)
        width = max(int((indptr[rows + 1] - indptr[rows]).max()), 1)
        own = self.serves_known_users and list(sequences.user_ids) == self.user_ids_
        users = torch.from_numpy(rows + 1 if own else np.zeros(len(rows), dtype=np.int64))
        self.temperature_ = fit_temperature(self.score_batch, padded_rows(indptr, items, rows, width), users,
                                            torch.from_numpy(np.asarray(targets)[rows]).long())
        return self

    def _top(self, scores: torch.Tensor, k: int, rules: list) -> list[torch.Tensor]:
        """Per row the indices of the slate, best first (``rules``: one Rules or None per row)."""
        groups: dict[tuple, list[int]] = {}
        for b, r in enumerate(rules):
            groups.setdefault(("plain",) if r is None else r.key(), []).append(b)
        out: list = [None] * len(rules)
        prices, cats = torch.from_numpy(self.item_prices_), [""] + self.item_categories_
        for key, rows in groups.items():  # requests with equal rules share one mask and one top-k
            sub = scores[rows]
            if key == ("plain",):
                picked = list(sub.topk(k, dim=1).indices)
            else:
                r = rules[rows[0]]
                ok = r.eligible(self._item_index, prices, self.n_items_)
                fresh = self._fresh_items() if r.new_slots else None
                picked = [torch.tensor(s, dtype=torch.long)
                          for s in r.select_many(sub, ok, k, cats, self._item_index, fresh)]
            for b, idx in zip(rows, picked):
                out[b] = idx
        return out

    def _fresh_items(self) -> torch.Tensor:
        """Bool ``[n_items + 1]``: items with no training interactions (added by :meth:`add_items`)."""
        fresh = torch.ones(self.n_items_ + 1, dtype=torch.bool)
        pop = torch.as_tensor(self.pop_)
        fresh[: len(pop)] = pop == 0
        fresh[0] = False
        return fresh

    def predict(self, histories, k: int = 10, **options) -> list[list[str]]:
        """Top-``k`` item ids per history (see :meth:`recommend`)."""
        return [[r["item_id"] for r in recs] for recs in self.recommend(histories, k, **options)]

    def _explain(self, out: list[list[dict]], rows, users, top_i) -> None:
        """Occlusion: for every distinct history item, the drop in each recommended item's
        score when every occurrence of it is removed, so an item viewed twice is one reason,
        not two identical ones. All occluded variants of a user go in one batch."""
        for b, hist in enumerate(rows):
            if len(hist) == 0 or not out[b]:
                for r in out[b]:
                    r["because"] = []
                continue
            seen = np.unique(hist)
            variants = [hist] + [hist[hist != item] for item in seen]
            indptr = np.zeros(len(variants) + 1, dtype=np.int64)
            indptr[1:] = np.cumsum([len(v) for v in variants])
            padded = padded_rows(indptr, np.concatenate(variants), np.arange(len(variants)), len(hist))
            s = self.score_batch(padded, users[b].repeat(len(variants)))
            rec = top_i[b][: len(out[b])]
            drop = (s[:1, rec] - s[1:, rec]).T  # [k, distinct items]
            for r, d in zip(out[b], drop):
                order = torch.argsort(d, descending=True)
                r["because"] = [{"item_id": self.item_ids_[int(seen[j]) - 1], "contribution": float(d[j])}
                                for j in order.tolist()]

    # ------------------------------------------------------------------ persistence
    def _artifact(self) -> tuple[dict, dict, dict]:
        params, tensors = self._state()
        tensors = {**tensors, "hist_indptr": self.hist_indptr_, "hist_items": self.hist_items_, "pop": self.pop_,
                   "item_prices": self.item_prices_, "item_costs": self.item_costs_,
                   "item_quantities": self._quantities(),
                   "item_token_offsets": getattr(self, "item_token_offsets_", np.zeros(0, np.int64)),
                   "item_tokens": getattr(self, "item_tokens_", np.zeros(0, np.int64))}
        meta = {"item_ids": self.item_ids_, "user_ids": self.user_ids_, "temperature": self.temperature_,
                "repeat_gate": getattr(self, "repeat_gate_", None),
                "feature_vocab": getattr(self, "feature_vocab_", []),
                "n_model_items": getattr(self, "n_model_items_", self.n_items_),
                "item_categories": self.item_categories_, "fit_info": getattr(self, "fit_info_", {})}
        return params, tensors, meta

    def _from_artifact(self, md) -> None:
        self.item_ids_, self.user_ids_ = md.meta["item_ids"], md.meta["user_ids"]
        self.item_categories_ = md.meta.get("item_categories", [""] * len(self.item_ids_))
        self.fit_info_ = md.meta.get("fit_info", {})
        self.n_items_ = len(self.item_ids_)
        unknown = np.full(self.n_items_ + 1, np.nan)  # folders saved before prices and costs
        self.item_prices_ = np.asarray(md.tensors.get("item_prices", unknown))
        self.item_costs_ = np.asarray(md.tensors.get("item_costs", unknown))
        self.item_quantities_ = np.asarray(md.tensors.get("item_quantities", unknown))
        self.temperature_ = float(md.meta.get("temperature", 1.0))
        self.repeat_gate_ = md.meta.get("repeat_gate")
        self.feature_vocab_ = md.meta.get("feature_vocab", [])
        empty = np.zeros(0, np.int64)
        self.item_token_offsets_ = np.asarray(md.tensors.get("item_token_offsets", empty))
        self.item_tokens_ = np.asarray(md.tensors.get("item_tokens", empty))
        self.hist_indptr_, self.hist_items_ = md.tensors["hist_indptr"], md.tensors["hist_items"]
        if "pop" in md.tensors:
            self.pop_ = md.tensors["pop"]
        else:  # folders saved before pop_ was stored
            self.pop_ = np.bincount(self.hist_items_, minlength=self.n_items_ + 1).astype(np.float64)
            self.pop_[0] = 0.0
        self._build_lookups()
        # The model's own tables cover the items it was fitted (or grown) on: it rebuilds at that size.
        self.n_model_items_ = int(md.meta.get("n_model_items", self.n_items_))
        n_all, self.n_items_ = self.n_items_, self.n_model_items_
        try:
            self._restore(md.params, md.tensors)
        finally:
            self.n_items_ = n_all

    # ------------------------------------------------------------------ hooks
    def _fit_indices(self, indptr, items, valid_targets) -> dict:
        raise NotImplementedError

    def _score(self, hist: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _state(self) -> tuple[dict, dict]:
        raise NotImplementedError

    def _restore(self, params: dict, tensors: dict) -> None:
        raise NotImplementedError
