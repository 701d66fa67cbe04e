"""Baselines (contract: tests/test_contract.py): planted signals (Markov finds the planted successor)."""

from __future__ import annotations

import pytest

from shopml.evaluation.protocols import evaluate_model
from shopml.recommend.baselines import ItemKNN, Markov, MostPopular
from shopml.testing import planted_split



@pytest.fixture(scope="module")
def planted():
    return planted_split()


def _hr10(model, split):
    _, _, test, train_valid, _ = split
    return evaluate_model(model.fit(train_valid), train_valid, test, ks=(10,))["A"]["hr@10"]


def test_markov_learns_planted_successor_well_above_popularity(planted):
    pop, markov = _hr10(MostPopular(), planted), _hr10(Markov(), planted)
    assert markov > 2 * pop and markov > 0.3, (markov, pop)


def test_markov_top_item_is_the_planted_successor(planted):
    _, _, _, train_valid, truth = planted
    m = Markov().fit(train_valid)
    items = truth.item_ids[:20]
    hits = [m.recommend([[i]], k=1)[0][0]["item_id"] == truth.successor(i) for i in items]
    assert sum(hits) >= 16, hits


def test_itemknn_beats_popularity(planted):
    assert _hr10(ItemKNN(), planted) > 1.5 * _hr10(MostPopular(), planted)
