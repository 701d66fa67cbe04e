"""Intent MLP on the UCI feature layout: planted signal, contract, preprocessing."""

import numpy as np
import polars as pl
import pytest

from shopml.evaluation.metrics import auc
from shopml.intent.tabular import IntentClassifier, TabularEncoder, synthetic_intent
from shopml.errors import DataError, NotFittedError


@pytest.fixture(scope="module")
def data():
    X, y = synthetic_intent(1500, seed=0)
    Xt, yt = synthetic_intent(800, seed=1)
    return X, y, Xt, yt


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return IntentClassifier(n_members=2, epochs=25, patience=4).fit(X, y)


def test_beats_trivial_baseline(data, fitted):
    _, _, Xt, yt = data
    p = fitted.predict_proba(Xt)
    assert np.all((p >= 0) & (p <= 1))
    got = auc(yt, p)
    base = auc(yt, Xt["ProductRelated"].to_numpy())  # an uninformative column
    assert got > 0.8 and got > base + 0.2


def test_save_load_round_trip(data, fitted, tmp_path):
    _, _, Xt, _ = data
    fitted.save(tmp_path / "m")
    again = IntentClassifier.load(tmp_path / "m")
    np.testing.assert_allclose(again.predict_proba(Xt), fitted.predict_proba(Xt), rtol=1e-5, atol=1e-6)


def test_not_fitted_and_bad_labels(data):
    X, y, _, _ = data
    with pytest.raises(NotFittedError):
        IntentClassifier().predict_proba(X)
    with pytest.raises(DataError):
        IntentClassifier().fit(X, np.zeros(X.height))


def test_encoder_one_hot_and_unseen_category(data):
    X, _, _, _ = data
    enc = TabularEncoder().fit(X)
    Z = enc.transform(X)
    assert np.isfinite(Z).all()
    unseen = X.head(1).with_columns(pl.lit("Zzz").alias("Month"))
    months = len(enc.vocab_["Month"])
    start = Z.shape[1] - sum(len(v) for v in enc.vocab_.values())
    assert enc.transform(unseen)[0, start:start + months].sum() == 0  # unseen month -> all zeros
