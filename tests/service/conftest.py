"""A tiny fitted run shared by the service tests (built once per session, a few seconds)."""

from __future__ import annotations

import pytest

KEY_HEX = "ab" * 32
RAW_USERS = [f"shopper-{n:03d}@example.com" for n in range(40)]
KEYS = {"all-scopes-key": ["*"], "recommend-only-key": ["recommend"]}


def _histories():
    # Planted structure: item i is followed by item i+1 (mod 30).
    return [[f"item{(u + j) % 30}" for j in range(6 + u % 5)] for u in range(len(RAW_USERS))]


@pytest.fixture(autouse=True)
def _fixed_key(monkeypatch):
    # One key for the whole session, so the session-scoped run matches every test's key.
    monkeypatch.setenv("SHOPML_KEY", KEY_HEX)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    import torch

    from shopml.sessions.estimator import SessionRecommender
    from shopml.privacy import pseudonymize
    from shopml.recommend.base import sequences_from_lists
    from shopml.recommend.baselines import MostPopular
    from shopml.recommend.models import SASRecRecommender
    from shopml.runs import save_run

    torch.set_num_threads(2)
    key = bytes.fromhex(KEY_HEX)
    hist = _histories()
    seqs = sequences_from_lists(hist, user_ids=pseudonymize(RAW_USERS, key=key))
    side = {"item_categories": {f"item{i}": f"c{i % 3}" for i in range(30)},
            "item_prices": {f"item{i}": float(i % 7) + 1.0 for i in range(30)}}
    sasrec = SASRecRecommender(dim=16, max_len=10, epochs=2, progress=False, threads=2).fit(seqs, **side)
    pop = MostPopular().fit(seqs, **side)
    sessions = SessionRecommender(dim=8, epochs=1, n_sample=4, batch_size=4).fit(hist)
    path = tmp_path_factory.mktemp("service") / "run"
    save_run(path, components={"recommend": sasrec, "recommend_pop": pop, "sessions": sessions,
                               "intent": _intent(), "pricing": _price_book()},
             items=sasrec.item_ids_, users=sasrec.user_ids_, key=key)
    return path


def _intent():
    from shopml.intent.estimator import PurchaseIntentModel
    from shopml.data.simulate import simulate_shop

    events = simulate_shop(n_users=30, n_items=30, seed=1).events
    return PurchaseIntentModel(dim=8, epochs=1).fit(events)


def _price_book():
    import polars as pl

    from shopml.data.market import simulate_market
    from shopml.pricing.demand import NeuralDemand
    from shopml.pricing.price_book import PriceBook

    panel = simulate_market(n_items=3, n_stores=3, n_weeks=20, seed=0).panel.with_columns(
        pl.format("item{}", pl.col("item")).alias("item"), pl.col("store").cast(pl.Utf8))
    demand = NeuralDemand(categorical=["item", "store"], numeric=["promo"], n_members=2, epochs=2).fit(panel)
    return PriceBook().fit(demand, panel.drop("_shock"))


@pytest.fixture
def client(tiny_run, monkeypatch):
    from fastapi.testclient import TestClient

    from shopml.service import create_app

    monkeypatch.setenv("SHOPML_KEY", KEY_HEX)
    with TestClient(create_app(tiny_run, api_keys=KEYS)) as c:
        yield c
