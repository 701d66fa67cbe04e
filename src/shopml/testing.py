"""The contract every shopml estimator meets, like scikit-learn's ``check_estimator``.

:func:`check_estimator` runs the whole contract on tiny data for one of the kinds:

========== ============================================== =====================================
kind       estimators                                     what ``predict`` returns
========== ============================================== =====================================
recommender SASRec, Caser, most-popular, item-KNN, Markov, per history a list of ``{"item_id",
           re-buy                                         "score"}`` dicts, best first
session    GRU4Rec, session popularity/Markov, V-SKNN     the same, plus ``"fallback"``
classifier IntentClassifier (features), PurchaseIntent-   P(purchase) per row / session
           Model (session events)
forecaster CustomerForecaster, BG/NBD                     expected purchases per customer
demand     NeuralDemand, LogLinearDemand                  expected units per price (``curve``)
========== ============================================== =====================================

Every kind checks: scikit-learn's ``clone``/``get_params``/``set_params``/``repr``; ``__init__``
only stores its arguments; NotFittedError before ``fit``; ``fit`` returns self; two fits with
the same parameters give exactly the same predictions; ``save``/``load`` gives exactly the same
predictions and a folder of another kind is refused. Recommenders and session models also
run :func:`check_recommender` (k items, exclusion, candidates, categories, explanations).

Example:
    >>> import tempfile
    >>> from shopml.recommend.baselines import MostPopular
    >>> check_estimator(MostPopular(), "recommender", tempfile.mkdtemp())
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone

from shopml.data.sequences import sequences_from_lists
from shopml.errors import ArtifactError, DataError, NotFittedError

__all__ = ["check_estimator", "check_recommender", "tiny_sequences", "planted_split", "KINDS"]


def tiny_sequences(n_users: int = 60, n_items: int = 25, seed: int = 0):
    """Random histories (3..9 items, raw ids ``i0..``) with a category per item."""
    rng = np.random.default_rng(seed)
    hists = [[f"i{j}" for j in rng.integers(0, n_items, rng.integers(3, 10))] for _ in range(n_users)]
    seqs = sequences_from_lists(hists, [f"user{u}" for u in range(n_users)])
    cats = {i: f"c{int(i[1:]) % 3}" for i in seqs.item_map.to_list()}
    return seqs, hists, cats


def _raises(exc, fn) -> None:
    try:
        fn()
    except exc:
        return
    raise AssertionError(f"expected {exc.__name__}")


# ---------------------------------------------------------------------- kinds: fit and predict
def _recommender():
    seqs, hists, cats = tiny_sequences()
    return (lambda m: m.fit(seqs, item_categories=cats)), (lambda m: m.recommend(hists[:5], k=5))


def _session():
    _, hists, _ = tiny_sequences()
    return (lambda m: m.fit(hists)), (lambda m: m.recommend(hists[:5], k=5))


def _classifier(model):
    if hasattr(model, "next_item_weight"):  # session events in, P(purchase) per session out
        from shopml.data.simulate import simulate_shop

        events = simulate_shop(n_users=150, seed=0).events
        return (lambda m: m.fit(events)), (lambda m: np.asarray(m.predict_proba(events)["p_purchase"]))
    from shopml.intent.tabular import synthetic_intent

    X, y = synthetic_intent(300, seed=0)
    return (lambda m: m.fit(X, y)), (lambda m: m.predict_proba(X))


def _forecaster(model):
    rng = np.random.default_rng(0)
    if hasattr(model, "penalizer"):  # BG/NBD: per-customer RFM in weeks
        T = rng.uniform(10, 40, 200)
        x = rng.poisson(3, 200).astype(float)
        tx = np.where(x > 0, rng.uniform(0, 1, 200) * T, 0.0)
        return (lambda m: m.fit(x, tx, T)), (lambda m: m.conditional_expected_purchases(8.0, x, tx, T))
    import datetime as dt

    import polars as pl

    start = dt.date(2020, 1, 1)
    rows = [(f"c{c}", start + dt.timedelta(days=int(d)), 10.0)
            for c in range(40) for d in sorted(set(rng.integers(0, 150, rng.integers(1, 8)).tolist()))]
    tx = pl.DataFrame(rows, schema=["customer_id", "date", "dollars"], orient="row")
    end = start + dt.timedelta(days=150)
    return ((lambda m: m.fit(tx, calibration_end=end, start=start)),
            (lambda m: m.forecast(4)["expected_purchases"].to_numpy()))


def _demand(model):
    from shopml.data.market import simulate_market

    panel = simulate_market(4, 6, 20, seed=0, confounded=False).panel
    context, prices = panel.head(3), np.linspace(0.5, 3.0, 6)

    def curve(m):
        units = np.asarray(m.curve(context, prices))
        assert (np.diff(units, axis=-1) <= 1e-9).all(), "demand must never rise with own price"
        return units

    return (lambda m: m.fit(panel)), curve


KINDS = {"recommender": lambda m: _recommender(), "session": lambda m: _session(),
         "classifier": _classifier, "forecaster": _forecaster, "demand": _demand}


# ---------------------------------------------------------------------- the contract
def check_estimator(estimator, kind: str, tmp_dir=None) -> None:
    """Assert the whole contract for ``estimator`` (an unfitted, small and fast instance)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    tmp_dir = Path(tmp_dir or tempfile.mkdtemp())
    fit, predict = KINDS[kind](estimator)
    _check_sklearn(estimator)
    _raises(NotFittedError, lambda: predict(estimator))
    _raises(NotFittedError, lambda: estimator.save(tmp_dir / "unfitted"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fit(estimator) is estimator, "fit must return self"
        first = predict(estimator)
        assert _same(predict(fit(clone(estimator))), first), "same parameters and seed must give the same predictions"
    path = tmp_dir / "model"
    estimator.save(path)
    loaded = type(estimator).load(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _same(predict(loaded), first), "load must restore identical predictions"
    _raises(ArtifactError, lambda: _load_kind(path, "no-such-kind"))
    if kind in ("recommender", "session"):
        check_recommender(lambda: clone(estimator), tmp_dir / "contract")


def _check_sklearn(est) -> None:
    assert isinstance(est, BaseEstimator), f"{type(est).__name__} must derive from sklearn's BaseEstimator"
    params = est.get_params(deep=False)
    learned = [k for k in vars(est) if k.endswith("_") and not k.startswith("_")]
    assert not learned, f"__init__ must only store its arguments, found {learned}"
    assert set(vars(est)) <= set(params), f"__init__ stores attributes that are not parameters: {set(vars(est)) - set(params)}"
    twin = clone(est)
    assert twin.get_params(deep=False) == params and repr(twin) == repr(est)
    if params:
        name, value = next(iter(params.items()))
        assert twin.set_params(**{name: value}) is twin


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.shape == np.shape(b) and np.array_equal(a, np.asarray(b), equal_nan=True)
    return a == b


def _load_kind(path, kind):
    from shopml.artifacts import read_model_dir

    read_model_dir(path, kind=kind)


def check_recommender(factory, tmp_dir) -> None:
    """The next-item behaviours: k items, exclude_seen, candidates, category filter, unknown items
    skipped with a warning, unknown users rejected (or, for session models, not served by id),
    occlusion explanations, and save/load round trips to identical scores."""
    seqs, hists, cats = tiny_sequences()
    model = factory()
    _raises(NotFittedError, lambda: model.recommend([["i1"]], k=3))
    assert model.fit(seqs, item_categories=cats) is model
    hist = hists[0]
    users = [hist, "user1"] if model.serves_known_users else [hist, hists[1]]
    recs = model.recommend(users, k=5, exclude_seen=True)
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
        with_unknown = model.recommend([hist + ["no-such-item"]], k=5, exclude_seen=True)[0]
    assert any("unknown item" in str(w.message) for w in caught), "unknown items must warn"
    assert [r["item_id"] for r in with_unknown] == [r["item_id"] for r in recs[0]]
    _raises(DataError, lambda: model.recommend(["no-such-user"], k=3))
    explained = model.recommend([hist + hist[:1]], k=2, explain=True)[0]  # the first item seen twice
    assert all(sorted(x["item_id"] for x in r["because"]) == sorted(set(hist)) for r in explained), \
        "one reason per distinct history item"
    path = Path(tmp_dir) / "model"
    model.save(path)
    loaded = type(model).load(path)
    h = torch.tensor([[0, 1, 2, 3], [5, 6, 7, 8]])
    u = torch.tensor([1, 0]) if model.serves_known_users else torch.tensor([0, 0])
    assert torch.equal(model.score_batch(h, u), loaded.score_batch(h, u)), "load must restore identical scores"
    assert loaded.recommend(users, k=5, exclude_seen=True) == recs
    # Items added after fit (cold start) are eligible, and survive a save/load.
    loaded.add_items(["new-1", "new-2", "i1"])
    assert loaded.n_items_ == seqs.n_items + 2, "add_items skips known items"
    every = {r["item_id"] for r in loaded.recommend([hist], k=seqs.n_items + 2, exclude_seen=False)[0]}
    assert {"new-1", "new-2"} <= every, "added items must be eligible"
    loaded.save(Path(tmp_dir) / "grown")
    grown = type(model).load(Path(tmp_dir) / "grown")
    assert torch.equal(loaded.score_batch(h, u), grown.score_batch(h, u)), "a grown model must load identically"
    _check_refresh(type(model).load(path), hists, tmp_dir)


def _check_refresh(model, hists, tmp_dir) -> None:
    """A warm refresh: a new user with a new item joins, known items keep their index, every
    item is scored, and the refreshed model saves and loads to identical scores."""
    from shopml.data.sequences import IdMap

    more = hists + [["i1", "fresh", "fresh", "i2"]]
    users = [f"user{u}" for u in range(len(hists))] + ["newbie"]
    seqs = sequences_from_lists(more, users, item_map=IdMap(model.item_ids_).extended(["fresh"]))
    known = list(model.item_ids_)
    assert model.refresh(seqs, rows=[0, len(hists)], epochs=1) is model
    assert model.item_ids_ == known + ["fresh"] and model.n_model_items_ == model.n_items_
    recs = model.recommend(["newbie"] if model.serves_known_users else [more[-1]], k=model.n_items_,
                           exclude_seen=False)[0]
    assert "fresh" in {r["item_id"] for r in recs} and len(recs) == model.n_items_
    model.save(Path(tmp_dir) / "refreshed")
    again = type(model).load(Path(tmp_dir) / "refreshed")
    h, u = torch.tensor([[0, 1, 2, len(known) + 1]]), torch.tensor([len(hists) + 1 if model.serves_known_users else 0])
    assert torch.equal(model.score_batch(h, u), again.score_batch(h, u)), "a refreshed model must load identically"


def planted_split(n_users: int = 400, n_items: int = 120, seed: int = 0):
    """A simulated shop's view sequences split leave-one-out, plus the simulator's truth:
    ``(train, valid, test, train_valid, truth)``. The planted signal is ``truth.next_item``."""
    from shopml.data.sequences import build_sequences, leave_one_out
    from shopml.data.simulate import simulate_shop

    shop = simulate_shop(n_users=n_users, n_items=n_items, n_categories=6, events_per_user=20, seed=seed)
    seqs = build_sequences(shop.events, event_types=["view"])
    train, valid, test = leave_one_out(seqs)
    return train, valid, test, train.append(valid), shop.truth
