"""Purchase intent head: AUC close to the true propensity's on the simulator, the purchase
event never used as input, fallbacks, save/load."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from shopml.intent.estimator import PurchaseIntentModel, session_tensors
from shopml.data.simulate import simulate_shop
from shopml.errors import NotFittedError
from shopml.evaluation.metrics import auc


@pytest.fixture(scope="module")
def split():
    shop = simulate_shop(n_users=2000, seed=1)
    sids = shop.truth.sessions["session_id"].to_list()
    test_ids = set(np.random.default_rng(0).choice(sids, size=len(sids) // 3, replace=False).tolist())
    is_test = pl.col("session_id").is_in(list(test_ids))
    return shop, shop.events.filter(~is_test), shop.events.filter(is_test)


@pytest.fixture(scope="module")
def fitted(split):
    # Small and short: dim 16, 8 epochs, no auxiliary next-item head (a third less time).
    # Gap to the true propensity's AUC when written: 0.016 at seed 0 (0.009, 0.007 at
    # seeds 1, 2; 0.016, 0.010, 0.013 with the head), under the 0.02 bar of the benchmark.
    return PurchaseIntentModel(dim=16, epochs=8, next_item_weight=0.0, seed=0).fit(split[1])


def test_intent_auc_close_to_true_propensity(split, fitted):
    shop, _, test = split
    out = fitted.predict_proba(test)
    truth = shop.truth.sessions.filter(pl.col("session_id").is_in(out["session_id"]))
    truth = dict(zip(truth["session_id"], zip(truth["purchased"], truth["propensity"])))
    y = np.array([truth[s][0] for s in out["session_id"]], dtype=float)
    oracle = auc(y, np.array([truth[s][1] for s in out["session_id"]]))
    model = auc(y, np.array(out["p_purchase"]))
    assert model >= oracle - 0.02, (model, oracle)  # the benchmark's bar


def test_purchase_event_is_not_an_input():
    t = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    ev = pl.DataFrame({"session_id": ["a", "a"], "item_id": ["x", "x"], "event_type": ["view", "purchase"],
                       "timestamp": [t, t + dt.timedelta(seconds=5)]})
    from shopml.data.sequences import IdMap

    x = session_tensors(ev, IdMap(["x"]))
    assert x.types.tolist() == [[1]] and x.labels.tolist() == [1.0]
    assert x.dwell.tolist() == [[0.0]]  # the last input event's dwell is unknown at prediction time


def test_intent_fallback_and_roundtrip(split, fitted, tmp_path):
    t = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    only_purchase = pl.DataFrame({"session_id": ["z"], "item_id": ["i1"], "event_type": ["purchase"], "timestamp": [t]})
    unknown = pl.DataFrame({"session_id": ["u"], "item_id": ["never-seen"], "event_type": ["view"], "timestamp": [t]})
    out = fitted.predict_proba(pl.concat([only_purchase, unknown]))
    assert out["fallback"][out["session_id"].index("z")] == "base_rate"
    assert all(np.isfinite(out["p_purchase"]))
    fitted.save(tmp_path / "m")
    again = PurchaseIntentModel.load(tmp_path / "m")
    some = split[2].head(200)
    np.testing.assert_allclose(again.predict_proba(some)["p_purchase"], fitted.predict_proba(some)["p_purchase"], rtol=1e-5)


def test_intent_not_fitted():
    with pytest.raises(NotFittedError):
        PurchaseIntentModel().predict_proba(pl.DataFrame())


def test_same_seed_same_weights_under_any_pseudonymization_key():
    # Session ids embed the pseudonymized user ("<user>:<n>"), and events come sorted by them:
    # another key relabels and reorders the sessions. Neither may change the fit.
    import hashlib

    import torch

    ev = simulate_shop(n_users=150, seed=1).events.with_columns(pl.col("session_id").cast(pl.Utf8))
    other_key = (ev.with_columns(pl.col("session_id").map_elements(lambda s: hashlib.md5(s.encode()).hexdigest(),
                                                                   return_dtype=pl.Utf8))
                 .sort("session_id", "timestamp", maintain_order=True))

    def weights(events):
        return PurchaseIntentModel(dim=8, epochs=3).fit(events).net_.state_dict()

    first, again, relabeled = weights(ev), weights(ev), weights(other_key)
    assert all(torch.equal(first[k], again[k]) and torch.equal(first[k], relabeled[k]) for k in first)
