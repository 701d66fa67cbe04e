"""Session baselines: popularity and last-item transitions (first-order Markov) are the
recommenders' own :class:`~shopml.recommend.baselines.MostPopular` and
:class:`~shopml.recommend.baselines.Markov` with the session defaults of
:class:`SessionRankerBase`; V-SKNN (Ludewig & Jannach 2018, "Evaluation of session-based
recommendation algorithms": session kNN whose query vector weights recent clicks more) is
vectorized with sparse matrices. Scores add a tiny popularity term, so items a model cannot tell
apart are ordered by popularity instead of all tying (ties would count against the model).

Example:
    >>> m = MarkovRecommender().fit([["a", "b"], ["a", "b"], ["a", "c"]])
    >>> m.predict([["a"]], k=2)
    [['b', 'c']]
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from shopml.errors import ConfigError
from shopml.recommend.baselines import Markov, MostPopular, csr_from_tensors, csr_tensors
from shopml.sessions.base import SessionRankerBase

__all__ = ["PopularityRecommender", "MarkovRecommender", "VSKNNRecommender", "VSKNN_YOOCHOOSE"]

#: V-SKNN settings of the Yoochoose benchmark, picked on a validation split cut from the
#: training file (its last 10% of sessions; 15,000 prefixes), never on the test file
#: (``benchmarks/tune_sessions.py --model vsknn``). Of
#: (k, sample_size) in {(100, 500), (100, all), (200, 2000), (500, 2000), (500, all),
#: (1000, all)}, (200, 2000) scored best: Recall@20 .6511 against .6377 for the defaults.
VSKNN_YOOCHOOSE = dict(k=200, sample_size=2000)


class PopularityRecommender(MostPopular, SessionRankerBase):
    """Most clicked items in training, whatever the session.

    Example:
        >>> PopularityRecommender().fit([["a", "b"], ["b"]]).predict([["a"]], k=1)
        [['b']]
    """

    kind = "session-pop"


class MarkovRecommender(Markov, SessionRankerBase):
    """Last-item transitions: the most likely next item after the session's last click."""

    kind = "session-markov"


class VSKNNRecommender(SessionRankerBase):
    """V-SKNN: the query session is a vector over items weighted linearly by recency
    (last click = 1, first of L clicks = 1/L). Candidate neighbours are the
    ``sample_size`` most recent training sessions sharing an item with the query (training
    sessions are taken to be in time order, as in the SR-GNN files); the top ``k`` of them by
    similarity are the neighbours, and an item's score is the summed similarity of the
    neighbours that contain it.

    Args:
        k: neighbours per query (default and ``sample_size`` as session-rec's V-SKNN).
        sample_size: most recent overlapping sessions considered (None: all of them).
            Recent sessions carry the current trends; old ones mostly add noise.
        similarity: ``"cosine"`` (the weighted overlap divided by sqrt(neighbour length))
            or ``"overlap"`` (the weighted overlap alone, as session-rec's V-SKNN).
        chunk: queries scored at once (bounds the dense (chunk, n_sessions) buffer).
    """

    kind = "session-vsknn"

    def __init__(self, k: int = 100, sample_size: int | None = 500, similarity: str = "cosine", chunk: int = 256):
        self.k, self.sample_size, self.similarity, self.chunk = k, sample_size, similarity, chunk

    def _check_params(self) -> None:
        if self.similarity not in ("cosine", "overlap"):
            raise ConfigError(f"similarity must be 'cosine' or 'overlap', not {self.similarity!r}")
        if self.k < 1 or (self.sample_size is not None and self.sample_size < 1):
            raise ConfigError("k and sample_size must be >= 1")

    def _fit_indices(self, indptr, items, valid_targets) -> dict:
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        m = sp.csr_matrix((np.ones(len(items), dtype=np.float32), (rows, items)), shape=(len(indptr) - 1, self.n_items_ + 1))
        m.data[:] = 1.0  # repeated clicks count once
        self.sess_ = m
        return {}

    def _tiebreak(self) -> np.ndarray:
        return (self.pop_ / (self.pop_.max() + 1.0) * 1e-6).astype(np.float32)

    def _state(self):
        return {}, csr_tensors(self.sess_, "sess")

    def _restore(self, params, tensors):
        self.sess_ = csr_from_tensors(tensors, "sess")

    def _query(self, prefixes: np.ndarray) -> sp.csr_matrix:
        B, L = prefixes.shape
        valid = prefixes > 0
        n = valid.sum(1, keepdims=True)
        pos = np.cumsum(valid, axis=1)  # 1..n over the real items
        w = np.where(valid, pos / np.maximum(n, 1), 0.0).astype(np.float32)
        q = sp.csr_matrix((w.ravel(), (np.repeat(np.arange(B), L), prefixes.ravel())), shape=(B, self.sess_.shape[1]))
        q.sum_duplicates()
        q.data = np.minimum(q.data, 1.0)  # a re-clicked item counts once, at its latest weight or less
        return q

    def _similarities(self, q: sp.csr_matrix, norms: np.ndarray) -> np.ndarray:
        """Dense (B, n_sessions) similarities, zero outside each query's sample."""
        sims = (q @ self.sess_.T).tocsr()
        sims.sort_indices()
        if self.sample_size is not None:
            # keep each row's last sample_size entries: the highest session indices = most recent
            counts = np.diff(sims.indptr)
            from_end = np.repeat(sims.indptr[1:], counts) - np.arange(sims.nnz) - 1
            keep = from_end < self.sample_size
            indptr = np.concatenate([[0], np.cumsum(np.minimum(counts, self.sample_size))])
            sims = sp.csr_matrix((sims.data[keep], sims.indices[keep], indptr), shape=sims.shape)
        if self.similarity == "cosine":
            sims = sims.multiply(1.0 / np.maximum(norms, 1.0)[None, :]).tocsr()
        return sims.toarray()

    def _score_encoded(self, prefixes: np.ndarray) -> torch.Tensor:
        out = []
        norms = np.sqrt(np.asarray(self.sess_.sum(1)).ravel()).astype(np.float32)
        for lo in range(0, prefixes.shape[0], self.chunk):
            sims = torch.from_numpy(self._similarities(self._query(prefixes[lo : lo + self.chunk]), norms))
            k = min(self.k, sims.shape[1])
            top = torch.topk(sims, k, dim=1)
            rows = np.repeat(np.arange(sims.shape[0]), k)
            nb = sp.csr_matrix((top.values.numpy().ravel(), (rows, top.indices.numpy().ravel())), shape=sims.shape)
            out.append(np.asarray((nb @ self.sess_).todense(), dtype=np.float32) + self._tiebreak())
        s = np.concatenate(out)
        s[:, 0] = -np.inf
        return torch.from_numpy(s)
