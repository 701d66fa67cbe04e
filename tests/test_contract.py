"""Every public estimator of shopml runs the one contract (shopml.testing.check_estimator), and
a new estimator class that is not listed here fails the enumeration test."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import shopml
from shopml.customers.bgnbd import BGNBD
from shopml.customers.estimator import CustomerForecaster
from shopml.estimator import Estimator
from shopml.intent.estimator import PurchaseIntentModel
from shopml.intent.tabular import IntentClassifier
from shopml.pricing.demand import NeuralDemand
from shopml.pricing.loglinear import LogLinearDemand
from shopml.recommend.baselines import CategoryPopularity, ItemKNN, Markov, MostPopular, Repurchase
from shopml.recommend.models import CaserRecommender, SASRecRecommender
from shopml.sessions.baselines import MarkovRecommender, PopularityRecommender, VSKNNRecommender
from shopml.sessions.estimator import SessionRecommender
from shopml.testing import check_estimator

# (small, fast instance, kind)
COVERED = {
    MostPopular: (MostPopular(), "recommender"),
    ItemKNN: (ItemKNN(), "recommender"),
    Markov: (Markov(), "recommender"),
    Repurchase: (Repurchase(), "recommender"),
    CategoryPopularity: (CategoryPopularity(), "recommender"),
    SASRecRecommender: (SASRecRecommender(dim=8, epochs=2, batch_size=32, progress=False, threads=1), "recommender"),
    CaserRecommender: (CaserRecommender(dim=8, L=3, n_h=2, n_v=1, epochs=2, batch_size=32, progress=False, threads=1),
                       "recommender"),
    SessionRecommender: (SessionRecommender(dim=8, n_sample=4, batch_size=8, epochs=2, threads=1), "session"),
    PopularityRecommender: (PopularityRecommender(), "session"),
    MarkovRecommender: (MarkovRecommender(), "session"),
    VSKNNRecommender: (VSKNNRecommender(k=5), "session"),
    IntentClassifier: (IntentClassifier(n_members=1, epochs=3), "classifier"),
    PurchaseIntentModel: (PurchaseIntentModel(dim=8, epochs=2), "classifier"),
    CustomerForecaster: (CustomerForecaster(dim=8, epochs=2, n_members=1, n_samples=10), "forecaster"),
    BGNBD: (BGNBD(), "forecaster"),
    NeuralDemand: (NeuralDemand(n_members=1, epochs=2, threads=1), "demand"),
    LogLinearDemand: (LogLinearDemand(elasticity=-2.0, se=0.2), "demand"),
}


def _public_estimator_classes() -> set[type]:
    """Every class in shopml with a public ``fit``: an estimator by the contract's definition."""
    found = set()
    for mod in pkgutil.walk_packages(shopml.__path__, "shopml."):
        if ".cli" in mod.name or ".service" in mod.name or mod.name.endswith("__main__"):
            continue
        module = importlib.import_module(mod.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if (cls.__module__ == module.__name__ and not name.startswith("_") and callable(getattr(cls, "fit", None))
                    and not inspect.isabstract(cls) and cls.__dict__.get("kind", None) != "base"):
                found.add(cls)
    return found


# Classes with a fit that are not estimators of a kind, and why.
NOT_ESTIMATORS = {
    "IdMap": "an id map; its fit is a classmethod constructor",
    "TabularEncoder": "a feature encoder inside IntentClassifier, saved with it",
    "PriceBook": "a decision table computed from a fitted demand model (tests/pricing)",
    "SequentialRecommender": "the next-item base",
    "SessionRankerBase": "the session base",
}


def test_every_public_estimator_is_covered():
    missing = {c.__qualname__ for c in _public_estimator_classes()} - {c.__qualname__ for c in COVERED} - set(NOT_ESTIMATORS)
    assert not missing, f"estimators without the contract test: {sorted(missing)}"
    assert all(issubclass(c, Estimator) for c in COVERED)


@pytest.mark.parametrize("cls", list(COVERED), ids=lambda c: c.__name__)
def test_contract(cls, tmp_path):
    estimator, kind = COVERED[cls]
    check_estimator(estimator, kind, tmp_path)


def test_the_enumeration_fails_on_a_new_uncovered_estimator(monkeypatch):
    import shopml.pricing.loglinear as host

    class NewDemand(Estimator):
        def fit(self, data):
            return self

    NewDemand.__module__ = host.__name__
    monkeypatch.setattr(host, "NewDemand", NewDemand, raising=False)
    assert NewDemand in _public_estimator_classes()
    with pytest.raises(AssertionError, match="NewDemand"):
        test_every_public_estimator_is_covered()
