"""Caser (contract: tests/test_contract.py): planted successor."""

from __future__ import annotations

from shopml.evaluation.protocols import evaluate_model
from shopml.recommend.baselines import MostPopular
from shopml.recommend.models import CaserRecommender
from shopml.testing import planted_split


def small(**kw):
    return CaserRecommender(dim=16, L=4, n_h=4, epochs=2, batch_size=64, progress=False, **kw)



def test_learns_planted_successor_well_above_popularity():
    train, valid, test, train_valid, _ = planted_split()
    m = CaserRecommender(dim=32, L=5, n_h=8, epochs=25, lr=5e-3, dropout=0.2, batch_size=128, patience=4,
                         progress=False).fit(train, valid)
    hr = evaluate_model(m, train_valid, test, ks=(10,))["A"]["hr@10"]
    pop = evaluate_model(MostPopular().fit(train_valid), train_valid, test, ks=(10,))["A"]["hr@10"]
    assert hr > 2 * pop and hr > 0.3, (hr, pop)
