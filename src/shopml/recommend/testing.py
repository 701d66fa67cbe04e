"""The shared contract every recommender must meet (like scikit-learn's ``check_estimator``).

A model's test file calls :func:`check_recommender` with a factory of a small, fast instance.

Example:
    >>> import tempfile
    >>> from shopml.recommend.baselines import MostPopular
    >>> check_recommender(MostPopular, tempfile.mkdtemp())
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from shopml.errors import ArtifactError, DataError, NotFittedError
from shopml.recommend.base import SequentialRecommender, sequences_from_lists

__all__ = ["check_recommender", "tiny_sequences"]


def tiny_sequences(n_users: int = 60, n_items: int = 25, seed: int = 0):
    """Random histories (3..9 items, raw ids ``i0..``) with a category per item."""
    rng = np.random.default_rng(seed)
    hists = [[f"i{j}" for j in rng.integers(0, n_items, rng.integers(3, 10))] for _ in range(n_users)]
    seqs = sequences_from_lists(hists, [f"user{u}" for u in range(n_users)])
    cats = {i: f"c{int(i[1:]) % 3}" for i in seqs.item_ids}
    return seqs, hists, cats


def _raises(exc, fn) -> None:
    try:
        fn()
    except exc:
        return
    raise AssertionError(f"expected {exc.__name__}")


def check_recommender(factory: Callable[[], SequentialRecommender], tmp_dir) -> None:
    """Assert the contract: NotFittedError, fit returns self, k items, exclude_seen, candidates,
    category filter, unknown items skipped with a warning, unknown users rejected, occlusion
    explanations, and save/load round trips to identical scores."""
    seqs, hists, cats = tiny_sequences()
    model = factory()
    _raises(NotFittedError, lambda: model.recommend([["i1"]], k=3))
    _raises(NotFittedError, lambda: model.save(Path(tmp_dir) / "nope"))
    assert model.fit(seqs, item_categories=cats) is model
    hist = hists[0]
    recs = model.recommend([hist, "user1"], k=5)
    assert [len(r) for r in recs] == [5, 5]
    assert not {r["item_id"] for r in recs[0]} & set(hist), "exclude_seen must drop history items"
    assert all(a["score"] >= b["score"] for a, b in zip(recs[0], recs[0][1:])), "sorted by score"
    everything = model.recommend([hist], k=seqs.n_items, exclude_seen=False)[0]
    assert len(everything) == seqs.n_items
    cands = ["i1", "i2", "i3", "i4"]
    got = model.recommend([hist], k=3, candidates=cands, exclude_seen=False)[0]
    assert {r["item_id"] for r in got} <= set(cands) and len(got) == 3
    in_cat = model.recommend([hist], k=3, category="c1", exclude_seen=False)[0]
    assert in_cat and all(cats[r["item_id"]] == "c1" for r in in_cat)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with_unknown = model.recommend([hist + ["no-such-item"]], k=5)[0]
    assert any("unknown item" in str(w.message) for w in caught), "unknown items must warn"
    assert [r["item_id"] for r in with_unknown] == [r["item_id"] for r in recs[0]]
    _raises(DataError, lambda: model.recommend(["no-such-user"], k=3))
    explained = model.recommend([hist], k=2, explain=True)[0]
    assert all(len(r["because"]) == len(hist) for r in explained)
    path = Path(tmp_dir) / "model"
    model.save(path)
    loaded = type(model).load(path)
    h = torch.tensor([[0, 1, 2, 3], [5, 6, 7, 8]])
    u = torch.tensor([1, 0])
    assert torch.equal(model.score_batch(h, u), loaded.score_batch(h, u)), "load must restore identical scores"
    assert loaded.recommend([hist, "user1"], k=5) == recs
    other = "recommend.pop" if model.kind != "recommend.pop" else "recommend.markov"
    _raises(ArtifactError, lambda: _load_kind(path, other))


def _load_kind(path, kind):
    from shopml.artifacts import read_model_dir

    read_model_dir(path, kind=kind)


def planted_split(n_users: int = 400, n_items: int = 120, seed: int = 0):
    """A simulated shop's view sequences split leave-one-out, plus the simulator's truth:
    ``(train, valid, test, train_valid, truth)``. The planted signal is ``truth.next_item``."""
    from shopml.data.sequences import build_sequences, leave_one_out
    from shopml.data.simulate import simulate_shop

    shop = simulate_shop(n_users=n_users, n_items=n_items, n_categories=6, events_per_user=20, seed=seed)
    seqs = build_sequences(shop.events, event_types=["view"])
    train, valid, test = leave_one_out(seqs)
    return train, valid, test, train.append(valid), shop.truth
