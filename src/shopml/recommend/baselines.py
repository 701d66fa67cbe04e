"""Non-neural baselines in the same harness: most popular, item-KNN, first-order Markov.

Every baseline adds ``1e-6 x`` normalized popularity to its scores so that the many exact ties
of count-based scores are broken by popularity instead of counted pessimistically.

Example:
    >>> from shopml.recommend.base import sequences_from_lists
    >>> s = sequences_from_lists([["a", "b", "c"], ["a", "b"], ["b", "c"]])
    >>> [r["item_id"] for r in ItemKNN().fit(s).recommend([["a"]], k=2)[0]]
    ['b', 'c']
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from shopml.recommend.base import SequentialRecommender

__all__ = ["MostPopular", "ItemKNN", "Markov", "Repurchase", "CategoryPopularity"]

_TIE = 1e-6


def _popularity(items: np.ndarray, n_items: int) -> np.ndarray:
    counts = np.bincount(items, minlength=n_items + 1).astype(np.float32)
    counts[0] = 0.0
    return counts


def csr_tensors(m: sp.csr_matrix, prefix: str) -> dict:
    """A sparse matrix as named arrays for a safetensors file (its shape included)."""
    m = m.tocsr()
    return {f"{prefix}_indptr": m.indptr.astype(np.int64), f"{prefix}_indices": m.indices.astype(np.int64),
            f"{prefix}_data": m.data.astype(np.float32), f"{prefix}_shape": np.array(m.shape, dtype=np.int64)}


def csr_from_tensors(tensors: dict, prefix: str, n: int | None = None) -> sp.csr_matrix:
    """Inverse of :func:`csr_tensors`; ``n`` gives an ``n x n`` shape to folders saved
    before the shape was stored."""
    shape = tuple(int(v) for v in tensors[f"{prefix}_shape"]) if f"{prefix}_shape" in tensors else (n, n)
    return sp.csr_matrix((tensors[f"{prefix}_data"], tensors[f"{prefix}_indices"], tensors[f"{prefix}_indptr"]),
                         shape=shape)


class MostPopular(SequentialRecommender):
    """Scores every item by its number of training interactions (the PopRec row of the tables).

    Example:
        >>> from shopml.recommend.base import sequences_from_lists
        >>> MostPopular().fit(sequences_from_lists([["a", "b"], ["b"]])).recommend([[]], k=1)[0][0]["item_id"]
        'b'
    """

    kind = "recommend.pop"

    def __init__(self):
        pass

    def _fit_indices(self, indptr, items, valid_targets) -> dict:
        self.pop_ = torch.from_numpy(_popularity(items, self.n_items_))
        return {}

    def _score(self, hist, users):
        return self.pop_.expand(hist.shape[0], -1).clone()

    def _state(self):
        return {}, {"pop": self.pop_}

    def _restore(self, params, tensors):
        self.pop_ = torch.from_numpy(tensors["pop"])


class ItemKNN(SequentialRecommender):
    """Item-based KNN: cosine similarity of items' user co-occurrence, keeping the ``neighbors``
    most similar items per item; a history scores ``sum_j sim(j, item)`` over its items.

    Example:
        >>> ItemKNN(neighbors=50).neighbors
        50
    """

    kind = "recommend.itemknn"

    def __init__(self, neighbors: int = 100, shrink: float = 0.0):
        self.neighbors = neighbors
        self.shrink = shrink

    def _fit_indices(self, indptr, items, valid_targets) -> dict:
        n = self.n_items_ + 1
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        x = sp.csr_matrix((np.ones(len(items), np.float32), (rows, items)), shape=(len(indptr) - 1, n))
        x.data[:] = 1.0  # binary: a repeated item counts once per user
        co = (x.T @ x).tocsr()
        norms = np.sqrt(np.asarray(x.sum(0)).ravel())
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        sim = co.data / (norms[co.row] * norms[co.col] + self.shrink + 1e-12)
        self.sim_ = _top_per_row(sp.csr_matrix((sim, (co.row, co.col)), shape=(n, n)), self.neighbors)
        self.pop_ = _popularity(items, self.n_items_)
        return {}

    def _score(self, hist, users):
        b, width = hist.shape
        h = hist.numpy()
        rows, cols = np.nonzero(h)
        q = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, h[rows, cols])), shape=(b, self.sim_.shape[0]))
        s = np.asarray((q @ self.sim_).todense(), dtype=np.float32)
        s += _TIE * self.pop_ / max(self.pop_.max(), 1.0)
        return torch.from_numpy(s)

    def _state(self):
        return {}, {**csr_tensors(self.sim_, "sim"), "pop": self.pop_}

    def _restore(self, params, tensors):
        self.sim_ = csr_from_tensors(tensors, "sim", self.n_items_ + 1)
        self.pop_ = tensors["pop"]


def _top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row (vectorized over rows via a lexsort)."""
    m = m.tocsr()
    m.sort_indices()
    row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((-m.data, row))
    rank = np.arange(len(order)) - m.indptr[row[order]]
    keep = order[rank < k]
    return sp.csr_matrix((m.data[keep], (row[keep], m.indices[keep])), shape=m.shape)


class Markov(SequentialRecommender):
    """First-order Markov chain: scores the items that followed the history's last item in
    training, by transition probability ("next after last item"), popularity breaking ties.

    Example:
        >>> Markov().kind
        'recommend.markov'
    """

    kind = "recommend.markov"

    def __init__(self):
        pass

    def _fit_indices(self, indptr, items, valid_targets) -> dict:
        n = self.n_items_ + 1
        same_user = np.ones(len(items), dtype=bool)
        same_user[indptr[1:-1] - 1] = False  # the last item of a user has no successor
        src = np.flatnonzero(same_user[:-1])
        t = sp.csr_matrix((np.ones(len(src), np.float32), (items[src], items[src + 1])), shape=(n, n))
        out = np.asarray(t.sum(1)).ravel()
        self.trans_ = sp.diags(1.0 / np.maximum(out, 1.0)).dot(t).tocsr().astype(np.float32)
        self.pop_ = _popularity(items, self.n_items_)
        return {}

    def _score(self, hist, users):
        last = hist[:, -1].numpy()
        s = np.asarray(self.trans_[last].todense(), dtype=np.float32)
        s += _TIE * self.pop_ / max(self.pop_.max(), 1.0)
        return torch.from_numpy(s)

    def _state(self):
        return {}, {**csr_tensors(self.trans_, "trans"), "pop": self.pop_}

    def _restore(self, params, tensors):
        self.trans_ = csr_from_tensors(tensors, "trans", self.n_items_ + 1)
        self.pop_ = tensors["pop"]


class Repurchase(SequentialRecommender):
    """"Re-buy what you bought": the user's own history items first, by how often and how
    recently they occur in it; the rest of the catalogue follows by popularity.

    On retail logs a large share of purchases are repeats, so this is the baseline to beat
    when the history is not excluded (protocol B); with the history excluded it is popularity.

    Example:
        >>> from shopml.recommend.base import sequences_from_lists
        >>> m = Repurchase().fit(sequences_from_lists([["a", "b", "a"], ["c", "c", "c"]]))
        >>> [r["item_id"] for r in m.recommend([["b", "a", "a"]], k=3, exclude_seen=False)[0]]
        ['a', 'b', 'c']
    """

    kind = "recommend.repurchase"

    def __init__(self, recency: float = 0.5):
        self.recency = recency  # weight of the most recent position, relative to one occurrence

    def _fit_indices(self, indptr, items, valid_targets) -> dict:
        self.pop_ = torch.from_numpy(_popularity(items, self.n_items_))
        return {}

    def _score(self, hist, users):
        width = hist.shape[1]
        # each occurrence counts 1, plus up to `recency` for being late in the history
        w = 1.0 + self.recency * torch.arange(1, width + 1, dtype=torch.float32) / width
        s = torch.zeros(hist.shape[0], len(self.pop_))
        s.scatter_add_(1, hist, w.expand_as(hist) * (hist > 0))
        return s + _TIE * self.pop_ / max(float(self.pop_.max()), 1.0)

    def _state(self):
        return {"recency": self.recency}, {"pop": self.pop_}

    def _restore(self, params, tensors):
        self.recency = params.get("recency", self.recency)
        self.pop_ = torch.from_numpy(tensors["pop"])


class CategoryPopularity(SequentialRecommender):
    """Popularity within the user's categories: the cold-start baseline.

    An item scores ``(1 + a) x pop``, where ``a`` counts how many of the item's feature tokens
    (categories, brands, attributes: :class:`~shopml.data.features.ItemFeatures`) the history's
    items carry, and ``pop`` is the item's training count. An item added after fit
    (:meth:`add_items`) has no count of its own, so it gets the mean count of the trained items
    that share a token with it: the popularity an item of its kind can expect. Without item
    features it is :class:`MostPopular`.

    Example:
        >>> from shopml.data.features import ItemFeatures
        >>> from shopml.recommend.base import sequences_from_lists
        >>> f = ItemFeatures.from_mapping({"a": ["x"], "b": ["y"], "c": ["y"], "n": ["x"]})
        >>> m = CategoryPopularity().fit(sequences_from_lists([["a", "b"], ["c", "b"], ["a"]]), item_features=f)
        >>> [r["item_id"] for r in m.add_items(["n"], f).recommend([["a"]], k=2)[0]]  # n: (1 + 1) x 2
        ['n', 'b']
    """

    kind = "recommend.category_pop"

    def __init__(self):
        pass

    def _fit_indices(self, indptr, items, valid_targets) -> dict:
        self.pop_ = torch.from_numpy(_popularity(items, self.n_items_))
        self._tokens()
        return {}

    def _tokens(self) -> None:
        """The sparse item x token matrix ``[n + 1, V + 1]`` (binary)."""
        off = np.asarray(self.item_token_offsets_ if len(self.item_token_offsets_) else np.zeros(self.n_items_ + 2))
        rows = np.repeat(np.arange(len(off) - 1), np.diff(off).astype(np.int64))
        n_tok = len(self.feature_vocab_) + 1
        self.m_ = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.asarray(self.item_tokens_, np.int64))),
                                shape=(self.n_items_ + 1, n_tok))

    def _grow(self, n_old: int, n_new: int) -> bool:
        self.pop_ = torch.cat([self.pop_, torch.zeros(n_new, dtype=self.pop_.dtype)])
        self._tokens()
        m = self.m_
        old = m[1 : n_old + 1]
        tok_mean = np.asarray(old.T @ self.pop_[1 : n_old + 1].numpy()).ravel() / np.maximum(
            np.asarray(old.sum(0)).ravel(), 1.0)  # mean count of the trained items per token
        new = m[n_old + 1 :]
        share = np.asarray(new.sum(1)).ravel()
        guess = np.asarray(new @ tok_mean).ravel() / np.maximum(share, 1.0)
        self.pop_[n_old + 1 :] = torch.from_numpy(guess.astype(np.float32))
        return True

    def _score(self, hist, users):
        h = hist.numpy()
        rows, cols = np.nonzero(h)
        q = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, h[rows, cols])), shape=(len(h), self.n_items_ + 1))
        affinity = np.asarray(((q @ self.m_) @ self.m_.T).todense(), dtype=np.float32)
        return torch.from_numpy(1.0 + affinity) * (self.pop_ + _TIE)

    def _state(self):
        return {}, {"pop": self.pop_}

    def _restore(self, params, tensors):
        self.pop_ = torch.from_numpy(tensors["pop"])
        self._tokens()
