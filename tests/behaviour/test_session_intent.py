"""Purchase intent head: AUC close to the true propensity's, fallbacks, save/load."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from shopml.behaviour.session_intent import PurchaseIntentModel
from shopml.errors import NotFittedError
from shopml.evaluation.metrics import auc


def _planted_sessions(n_sessions: int, seed: int) -> tuple[pl.DataFrame, dict]:
    """Sessions whose purchase propensity depends on carts, dwell and a 'hot' item set.

    Kept in the test: the package simulator (data-core) is the benchmark's source; this
    tiny generator only plants a known propensity for a fast unit test.
    """
    rng = np.random.default_rng(seed)
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    rows, truth = [], {}
    for s in range(n_sessions):
        n = int(rng.integers(1, 8))
        items = rng.integers(0, 40, n)
        carts = rng.random(n) < 0.15
        dwell = rng.exponential(30, n)
        z = -2.2 + 1.6 * carts.sum() + 1.0 * (items < 5).any() + 0.012 * dwell[:-1].sum()
        p = 1 / (1 + np.exp(-z))
        truth[f"s{s}"] = p
        t = t0 + dt.timedelta(hours=s)
        for k in range(n):
            rows.append((f"s{s}", f"i{items[k]}", "cart" if carts[k] else "view", t))
            t += dt.timedelta(seconds=float(dwell[k]))
        if rng.random() < p:
            rows.append((f"s{s}", f"i{items[-1]}", "purchase", t))
    ev = pl.DataFrame(rows, schema=["session_id", "item_id", "event_type", "timestamp"], orient="row")
    return ev, truth


@pytest.fixture(scope="module")
def fitted():
    train, _ = _planted_sessions(5000, seed=1)
    return PurchaseIntentModel(epochs=10, dim=32).fit(train)


def test_intent_auc_close_to_true_propensity(fitted):
    test, truth = _planted_sessions(2000, seed=2)
    out = fitted.predict_proba(test)
    y = test.group_by("session_id").agg((pl.col("event_type") == "purchase").any())
    label = dict(zip(y["session_id"], y["event_type"]))
    ys = np.array([label[s] for s in out["session_id"]], dtype=float)
    oracle = auc(ys, np.array([truth[s] for s in out["session_id"]]))
    model = auc(ys, np.array(out["p_purchase"]))
    assert model >= oracle - 0.02, (model, oracle)


def test_purchase_event_is_not_an_input():
    t = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    ev = pl.DataFrame({"session_id": ["a", "a"], "item_id": ["x", "x"], "event_type": ["view", "purchase"],
                       "timestamp": [t, t + dt.timedelta(seconds=5)]})
    m = PurchaseIntentModel(epochs=1, dim=4).fit(pl.concat([ev, ev.with_columns(pl.lit("b").alias("session_id")).head(1)]))
    from shopml.behaviour.session_intent import session_tensors

    x = session_tensors(ev, m.items_)
    assert x.types.tolist() == [[1]] and x.labels.tolist() == [1.0]
    assert x.dwell.tolist() == [[0.0]]  # the last input event's dwell is unknown at prediction time


def test_intent_fallback_and_roundtrip(fitted, tmp_path):
    t = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    only_purchase = pl.DataFrame({"session_id": ["z"], "item_id": ["i1"], "event_type": ["purchase"], "timestamp": [t]})
    unknown = pl.DataFrame({"session_id": ["u"], "item_id": ["never-seen"], "event_type": ["view"], "timestamp": [t]})
    out = fitted.predict_proba(pl.concat([only_purchase, unknown]))
    assert out["fallback"][out["session_id"].index("z")] == "base_rate"
    assert all(np.isfinite(out["p_purchase"]))
    fitted.save(tmp_path / "m")
    again = PurchaseIntentModel.load(tmp_path / "m")
    test, _ = _planted_sessions(50, seed=3)
    np.testing.assert_allclose(again.predict_proba(test)["p_purchase"], fitted.predict_proba(test)["p_purchase"], rtol=1e-5)


def test_intent_not_fitted():
    with pytest.raises(NotFittedError):
        PurchaseIntentModel().predict_proba(pl.DataFrame())
