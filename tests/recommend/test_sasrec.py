"""SASRec (contract: tests/test_contract.py): planted successor, sampled-softmax switch, resume via checkpoints."""

from __future__ import annotations

import pytest
import torch

from shopml.evaluation.protocols import evaluate_model
from shopml.recommend.baselines import MostPopular
from shopml.recommend.models import SASRecRecommender
from shopml.testing import planted_split


def small(**kw):
    return SASRecRecommender(**{"dim": 16, "max_len": 10, "epochs": 2, "batch_size": 32, "progress": False, **kw})



def test_learns_planted_successor_well_above_popularity():
    train, valid, test, train_valid, _ = planted_split()
    m = SASRecRecommender(dim=32, max_len=20, epochs=25, lr=5e-3, dropout=0.2, batch_size=64, patience=4,
                          progress=False).fit(train, valid)
    hr = evaluate_model(m, train_valid, test, ks=(10,))["A"]["hr@10"]
    pop = evaluate_model(MostPopular().fit(train_valid), train_valid, test, ks=(10,))["A"]["hr@10"]
    assert hr > 2 * pop and hr > 0.3, (hr, pop)
    assert m.fit_info_["best_epoch"] >= 1 and m.fit_info_["history"]


def test_sampled_ce_uses_the_full_softmax_only_after_the_first_plateau(monkeypatch):
    import shopml.recommend.models as models

    train, valid, *_ = planted_split()
    calls = []
    full = models.chunked_cross_entropy
    monkeypatch.setattr(models, "chunked_cross_entropy", lambda *a, **k: calls.append(1) or full(*a, **k))
    scores = iter([0.1, 0.5, 0.4, 0.3] + [0.2] * 20)  # a plateau after epoch 2 (patience 2)
    monkeypatch.setattr(models, "evaluate", lambda *a, **k: {"A": {"ndcg@10": next(scores)}})
    small(epochs=1, refit_epochs=0).fit(train)  # the default loss is "ce"
    steps, calls[:] = len(calls), []  # full-softmax calls in one epoch
    m = small(epochs=6, patience=2, lr_decays=1, refit_epochs=0, n_negatives=8, loss="sampled-ce")
    m.fit(train, valid)
    assert m.fit_info_["epochs"] == 6 and len(calls) == 2 * steps > 0  # epochs 5-6, after the decay at 4
    calls.clear()
    small(epochs=2, refit_epochs=0, loss="sampled-ce").fit(train)  # no validation, no plateau: full softmax throughout
    assert len(calls) == 2 * steps
    calls.clear()
    small(epochs=2, refit_epochs=1, loss="sampled-ce").fit(train, valid)  # no plateau in 2 epochs: the refit alone is full
    assert len(calls) > 0


def test_sampled_softmax_switch_learns_too():
    train, valid, test, train_valid, _ = planted_split()
    m = SASRecRecommender(dim=32, max_len=20, epochs=15, lr=5e-3, dropout=0.2, batch_size=64, loss="sampled",
                          n_negatives=30, progress=False).fit(train, valid)
    pop = evaluate_model(MostPopular().fit(train_valid), train_valid, test, ks=(10,))["A"]["hr@10"]
    assert evaluate_model(m, train_valid, test, ks=(10,))["A"]["hr@10"] > 2 * pop


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine: --device cuda is tested where one is lent")
@pytest.mark.parametrize("model", ["sasrec", "caser"])
def test_trains_on_cuda_and_serves_on_the_cpu(model):
    from shopml.recommend.models import CaserRecommender

    train, valid, test, train_valid, _ = planted_split()
    kw = {"dim": 32, "epochs": 25, "lr": 5e-3, "batch_size": 64, "patience": 4, "progress": False, "device": "cuda"}
    m = SASRecRecommender(max_len=20, dropout=0.2, **kw) if model == "sasrec" else CaserRecommender(L=5, **kw)
    m.fit(train, valid)
    assert all(p.device.type == "cpu" for p in m.net_.parameters())  # trained on the GPU, served on the CPU
    hr = evaluate_model(m, train_valid, test, ks=(10,))["A"]["hr@10"]
    pop = evaluate_model(MostPopular().fit(train_valid), train_valid, test, ks=(10,))["A"]["hr@10"]
    assert hr > 2 * pop, (hr, pop)
