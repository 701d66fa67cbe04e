"""Monotone neural demand: monotone by construction, autograd elasticity, planted signal, save/load."""

import numpy as np
import polars as pl
import pytest
import torch

from shopml.data.market import simulate_market
from shopml.errors import DataError, NotFittedError
from shopml.pricing.demand import NeuralDemand
from shopml.pricing.nets import MonotoneDemandNet


def _random_pairs(net, n, seed):
    g = torch.Generator().manual_seed(seed)
    cats = torch.stack([torch.randint(0, 7, (n,), generator=g), torch.randint(0, 5, (n,), generator=g)], 1)
    nums = torch.randn(n, 3, generator=g) * 3
    s_hi = torch.randn(n, generator=g) * 3
    s_lo = s_hi - torch.rand(n, generator=g) * 4  # s = -log price: s_lo is a HIGHER price
    with torch.no_grad():
        return net(cats, nums, s_hi), net(cats, nums, s_lo)


@pytest.mark.parametrize("seed", [0, 1])
def test_demand_never_increases_with_price_on_10000_random_inputs(seed):
    torch.manual_seed(seed)
    net = MonotoneDemandNet([7, 5], n_numeric=3, price_units=6)
    for p in net.parameters():  # arbitrary weights, including large ones: monotone regardless
        p.data.normal_(0, 3)
    low_price, high_price = _random_pairs(net, 10_000, seed)
    assert (high_price <= low_price + 1e-5).all()


@pytest.fixture(scope="module")
def fitted():
    m = simulate_market(6, 20, 52, seed=0, confounded=False, elasticity_spread=0.8)
    model = NeuralDemand(categorical=["item", "store"], numeric=["promo", "income"], n_members=2, epochs=20, patience=5,
                         batch_size=256, lr=5e-3).fit(m.panel)
    return m, model


def test_trained_model_is_monotone_on_10000_random_rows(fitted):
    m, model = fitted
    rng = np.random.default_rng(0)
    rows = m.panel.sample(10_000, with_replacement=True, seed=1).with_columns(
        pl.Series("promo", rng.integers(0, 2, 10_000)), pl.Series("income", rng.normal(0, 3, 10_000)))
    p1 = rng.uniform(0.2, 30, 10_000)
    p2 = p1 * rng.uniform(1.0, 2.0, 10_000)
    assert (model.predict(rows, p2) <= model.predict(rows, p1) * (1 + 1e-5)).all()


def test_autograd_elasticity_matches_finite_differences(fitted):
    m, model = fitted
    rows = m.panel[:50]
    p = rows["price"].to_numpy()
    e = model.elasticity(rows).mean(0)
    h = 1e-3
    fd = (np.log(model.predict(rows, p * np.exp(h))) - np.log(model.predict(rows, p * np.exp(-h)))) / (2 * h)
    assert np.allclose(e, fd, atol=0.05)
    assert (e <= 0).all()


def test_planted_item_elasticities_are_learned(fitted):
    m, model = fitted
    by = sorted(model.average_elasticity(m.panel, by="item"), key=lambda r: int(r["segment"]))
    est = np.array([r["elasticity"] for r in by])
    assert np.abs(est - m.truth.elasticity).mean() < 0.3
    assert np.corrcoef(est, m.truth.elasticity)[0, 1] > 0.8


def test_elasticity_curve_is_plain_arrays_with_bands(fitted):
    _, model = fitted
    c = model.elasticity_curve(0, np.linspace(2, 8, 7))
    assert c["elasticity"].shape == (7,) and (c["elasticity"] <= 0).all()
    assert (c["elasticity_low"] <= c["elasticity_high"]).all()
    assert (np.diff(c["units"]) <= 1e-6 * c["units"][:-1]).all()
    with pytest.raises(DataError, match="unknown item"):
        model.elasticity_curve("nope", [1.0])


def test_save_load_roundtrip(fitted, tmp_path):
    m, model = fitted
    model.save(tmp_path / "demand")
    loaded = NeuralDemand.load(tmp_path / "demand")
    rows = m.panel[:20]
    assert np.allclose(loaded.predict(rows), model.predict(rows), rtol=1e-6)
    assert np.allclose(loaded.elasticity_curve(1, [3.0])["elasticity"], model.elasticity_curve(1, [3.0])["elasticity"])


def test_contract_not_fitted_and_bad_input(fitted):
    m, model = fitted
    with pytest.raises(NotFittedError):
        NeuralDemand().predict(m.panel)
    with pytest.raises(DataError, match="missing"):
        model.predict(m.panel.drop("income"))
    with pytest.raises(DataError, match="positive"):
        model.predict(m.panel[:3], np.array([1.0, 0.0, 2.0]))
    est = NeuralDemand(epochs=1, n_members=1)
    assert est.epochs == 1 and not hasattr(est, "members_")  # __init__ stores kwargs only


def test_oj_neural_elasticities_per_brand(real_file):
    from shopml.pricing.panel import read_panel

    d = read_panel(real_file("dominicks-oj", "oj_store_week_3brands.csv"),
                   real_file("dominicks-oj", "orangeJuice_storedemo.csv"))
    model = NeuralDemand(y="logmove", categorical=["brand", "store", "week"], numeric=["feat"], item="brand",
                         n_members=2, epochs=6, batch_size=512).fit(d)
    for r in model.average_elasticity(d, by="brand"):
        assert -4.0 < r["elasticity"] < -1.5, r


def test_grid_equals_forward_on_every_row_price_pair():
    import torch

    from shopml.pricing.nets import MonotoneDemandNet

    torch.manual_seed(0)
    net = MonotoneDemandNet([5, 3], 2, dim=4, hidden=8, price_units=3)
    cats, nums, s = torch.randint(0, 3, (6, 2)), torch.randn(6, 2), torch.linspace(-2, 2, 7)
    want = net(cats.repeat_interleave(7, 0), nums.repeat_interleave(7, 0), s.repeat(6)).reshape(6, 7)
    assert torch.allclose(net.grid(cats, nums, s), want, atol=1e-6)


def test_fit_runs_with_its_threads_and_restores_the_callers(monkeypatch):
    """torch.set_num_threads is process-wide: fit uses ``threads`` inside, then gives the
    caller's setting back."""
    from shopml.pricing import demand

    seen, real = [], demand.train
    monkeypatch.setattr(demand, "train", lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])
    m = simulate_market(3, 4, 10, seed=0)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        NeuralDemand(categorical=["item", "store"], n_members=1, epochs=1, threads=2).fit(m.panel)
        assert seen == [2] and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
