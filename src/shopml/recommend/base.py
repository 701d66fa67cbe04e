"""The one base of every recommender: id maps, known-user histories, ``recommend``, occlusion
explanations, and ``save``/``load`` through :mod:`shopml.artifacts` (JSON + safetensors).

A subclass implements four hooks on 1-based item indices:

* ``_fit_indices(indptr, items, valid_targets)``: learn from CSR histories;
* ``_score(hist, users) -> Tensor[B, n_items + 1]``: scores after left-padded histories
  ``[B, L]`` for user rows ``users`` (0 = unknown user); column 0 is padding;
* ``_state() -> (params, tensors)`` and ``_restore(tensors)`` for persistence.

Example:
    >>> from shopml.recommend.baselines import MostPopular
    >>> seqs = sequences_from_lists([["a", "b"], ["b", "c"], ["b"]])
    >>> [r["item_id"] for r in MostPopular().fit(seqs).recommend([["a"]], k=2)[0]]
    ['b', 'c']
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from shopml.artifacts import read_model_dir, write_model_dir
from shopml.errors import ConfigError, DataError, NotFittedError

__all__ = ["SequentialRecommender", "pad_left", "append_targets", "sequences_from_lists", "CSR"]


@dataclass
class CSR:
    """Minimal stand-in for :class:`shopml.data.sequences.Sequences` (same attribute names)."""

    indptr: np.ndarray
    items: np.ndarray
    user_ids: list[str]
    item_ids: list[str]
    extra: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_items(self) -> int:
        return len(self.item_ids)


def sequences_from_lists(histories: Sequence[Sequence], user_ids: Sequence[str] | None = None) -> CSR:
    """CSR sequences from per-user lists of raw item ids (index 0 = padding, items 1..n in
    first-seen order). Used by tests and by request-time histories.

    Example:
        >>> s = sequences_from_lists([["x", "y"], ["y"]])
        >>> s.indptr.tolist(), s.items.tolist(), s.item_ids
        ([0, 2, 3], [1, 2, 2], ['x', 'y'])
    """
    index: dict[str, int] = {}
    flat = [index.setdefault(str(i), len(index) + 1) for h in histories for i in h]
    indptr = np.zeros(len(histories) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(h) for h in histories])
    users = list(user_ids) if user_ids is not None else [f"u{i}" for i in range(len(histories))]
    return CSR(indptr, np.asarray(flat, dtype=np.int64), users, list(index))


def item_ids_of(seqs) -> list[str]:
    """Raw item ids for indices 1..n of a Sequences-like object."""
    if hasattr(seqs, "item_ids"):
        return [str(x) for x in seqs.item_ids]
    ids = [str(x) for x in seqs.item_map.to_list()]
    return ids[1:] if len(ids) == seqs.n_items + 1 else ids


def pad_left(indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, width: int) -> torch.Tensor:
    """The last ``width`` items of each row, left-padded with 0, as ``LongTensor[len(rows), width]``.

    Example:
        >>> pad_left(np.array([0, 3, 4]), np.array([5, 6, 7, 8]), np.array([0, 1]), 2).tolist()
        [[6, 7], [0, 8]]
    """
    rows = np.asarray(rows, dtype=np.int64)
    ends = indptr[rows + 1]
    lens = np.minimum(ends - indptr[rows], width)
    cols = np.arange(width)[None, :]
    src = ends[:, None] - width + cols  # position in `items` of each cell
    valid = cols >= (width - lens)[:, None]
    out = np.where(valid, items[np.clip(src, 0, max(len(items) - 1, 0))] if len(items) else 0, 0)
    return torch.from_numpy(out.astype(np.int64))


def append_targets(indptr: np.ndarray, items: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR with ``targets[u]`` appended to row ``u`` (0 targets are skipped): test histories are
    train + validation item.

    Example:
        >>> p, i = append_targets(np.array([0, 1, 2]), np.array([4, 5]), np.array([6, 0]))
        >>> p.tolist(), i.tolist()
        ([0, 2, 3], [4, 6, 5])
    """
    add = (np.asarray(targets) > 0).astype(np.int64)
    lens = np.diff(indptr) + add
    new_ptr = np.zeros_like(indptr)
    new_ptr[1:] = np.cumsum(lens)
    out = np.zeros(new_ptr[-1], dtype=np.int64)
    row_of = np.repeat(np.arange(len(lens)), np.diff(indptr))
    pos = np.arange(len(items)) - indptr[row_of] + new_ptr[row_of]
    out[pos] = items
    has = np.flatnonzero(add)
    out[new_ptr[has + 1] - 1] = np.asarray(targets)[has]
    return new_ptr, out


class SequentialRecommender:
    """Base estimator: subclasses set ``kind`` and implement the hooks in the module docstring."""

    kind = "base"

    # ------------------------------------------------------------------ sklearn plumbing
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params) -> "SequentialRecommender":
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def _check_fitted(self) -> None:
        if not hasattr(self, "item_ids_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(sequences) first")

    # ------------------------------------------------------------------ fit
    def fit(self, sequences, valid_targets: np.ndarray | None = None, *, item_categories: dict | None = None):
        """Learn from chronological per-user sequences (a ``Sequences``); with ``valid_targets``
        (one item index per user, 0 = none) neural models early-stop on validation NDCG@10.
        ``item_categories`` (raw item id -> category) enables the ``category`` filter."""
        indptr = np.asarray(sequences.indptr, dtype=np.int64)
        items = np.asarray(sequences.items, dtype=np.int64)
        if len(items) == 0:
            raise DataError("no events to fit on")
        self.item_ids_ = item_ids_of(sequences)
        self.n_items_ = len(self.item_ids_)
        if items.max() > self.n_items_ or items.min() < 1:
            raise DataError("item indices must be 1..n_items")
        self.user_ids_ = [str(u) for u in sequences.user_ids]
        self.hist_indptr_, self.hist_items_ = indptr, items
        cats = item_categories or {}
        self.item_categories_ = [str(cats.get(i, "")) for i in self.item_ids_]
        self._build_lookups()
        self.fit_info_ = self._fit_indices(indptr, items, None if valid_targets is None else np.asarray(valid_targets))
        return self

    def set_histories(self, sequences) -> "SequentialRecommender":
        """Replace the stored known-user histories (same item map), e.g. with train + validation
        item after early stopping, so known users are served with their latest items."""
        self._check_fitted()
        if item_ids_of(sequences) != self.item_ids_:
            raise DataError("set_histories needs sequences with the model's item map")
        self.user_ids_ = [str(u) for u in sequences.user_ids]
        self.hist_indptr_ = np.asarray(sequences.indptr, dtype=np.int64)
        self.hist_items_ = np.asarray(sequences.items, dtype=np.int64)
        self._build_lookups()
        return self

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
        with torch.no_grad():
            s = self._score(hist.long(), users.long()).float()
        s[:, 0] = float("-inf")
        return s

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
        return pad_left(indptr, flat, np.arange(len(rows)), width), torch.tensor(users), rows

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

    def recommend(self, histories, k: int = 10, exclude_seen: bool = True, candidates=None, *,
                  category: str | None = None, explain: bool = False) -> list[list[dict]]:
        """Top-``k`` items for each history: a known (pseudonymized) user id, or a list of raw item
        ids given at request time. Returns per history a list of ``{"item_id", "score"}`` dicts,
        plus ``"because"`` (history items whose removal lowers the score most) when ``explain``.

        Example:
            >>> from shopml.recommend.baselines import Markov
            >>> m = Markov().fit(sequences_from_lists([["a", "b"], ["a", "b"], ["c", "a"]]))
            >>> m.recommend([["a"]], k=1)[0][0]["item_id"]
            'b'
        """
        self._check_fitted()
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        hist, users, rows = self._resolve(histories)
        scores = self.score_batch(hist, users)
        allowed = self._filter_mask(candidates, category)
        if allowed is not None:
            scores[:, ~allowed] = float("-inf")
        if exclude_seen:
            scores.scatter_(1, hist, float("-inf"))
        k = min(k, self.n_items_)
        top_s, top_i = scores.topk(k, dim=1)
        out = []
        for b in range(len(rows)):
            keep = torch.isfinite(top_s[b])
            out.append([{"item_id": self.item_ids_[int(i) - 1], "score": float(s)}
                        for i, s in zip(top_i[b][keep], top_s[b][keep])])
        if explain:
            self._explain(out, rows, users, top_i)
        return out

    def _explain(self, out: list[list[dict]], rows, users, top_i) -> None:
        """Occlusion: for every history item, the drop in each recommended item's score when
        that one history item is removed. All occluded variants of a user go in one batch."""
        for b, hist in enumerate(rows):
            n = len(hist)
            if n == 0 or not out[b]:
                for r in out[b]:
                    r["because"] = []
                continue
            keep = ~np.eye(n, dtype=bool)
            variants = [hist] + [hist[keep[j]] for j in range(n)]
            indptr = np.zeros(n + 2, dtype=np.int64)
            indptr[1:] = np.cumsum([len(v) for v in variants])
            padded = pad_left(indptr, np.concatenate(variants), np.arange(n + 1), max(n, 1))
            s = self.score_batch(padded, users[b].repeat(n + 1))
            rec = top_i[b][: len(out[b])]
            drop = (s[:1, rec] - s[1:, rec]).T  # [k, n]
            for r, d in zip(out[b], drop):
                order = torch.argsort(d, descending=True)
                r["because"] = [{"item_id": self.item_ids_[int(hist[j]) - 1], "contribution": float(d[j])}
                                for j in order.tolist()]

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the fitted model to a folder (model.json + tensors.safetensors; no pickle)."""
        self._check_fitted()
        params, tensors = self._state()
        tensors = {**tensors, "hist_indptr": self.hist_indptr_, "hist_items": self.hist_items_}
        meta = {"item_ids": self.item_ids_, "user_ids": self.user_ids_,
                "item_categories": self.item_categories_, "fit_info": getattr(self, "fit_info_", {})}
        write_model_dir(path, kind=self.kind, params={**self.get_params(), **params}, tensors=tensors, meta=meta)

    @classmethod
    def load(cls, path):
        """Load a folder written by :meth:`save` (refuses other model kinds)."""
        md = read_model_dir(path, kind=cls.kind)
        names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        self = cls(**{k: v for k, v in md.params.items() if k in names})
        self.item_ids_, self.user_ids_ = md.meta["item_ids"], md.meta["user_ids"]
        self.item_categories_ = md.meta.get("item_categories", [""] * len(self.item_ids_))
        self.fit_info_ = md.meta.get("fit_info", {})
        self.n_items_ = len(self.item_ids_)
        self.hist_indptr_, self.hist_items_ = md.tensors["hist_indptr"], md.tensors["hist_items"]
        self._build_lookups()
        self._restore(md.params, md.tensors)
        return self

    # ------------------------------------------------------------------ hooks
    def _fit_indices(self, indptr, items, valid_targets) -> dict:
        raise NotImplementedError

    def _score(self, hist: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _state(self) -> tuple[dict, dict]:
        raise NotImplementedError

    def _restore(self, params: dict, tensors: dict) -> None:
        raise NotImplementedError
