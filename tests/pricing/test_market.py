"""Simulated price market: shape, determinism, confounding and the instrument's validity."""

import numpy as np
import polars as pl

from shopml.data.market import CONFOUNDERS, simulate_market


def test_shape_columns_and_seed():
    a = simulate_market(n_items=4, n_stores=3, n_weeks=5, seed=3)
    b = simulate_market(n_items=4, n_stores=3, n_weeks=5, seed=3)
    assert a.panel.height == 60
    for col in ["item", "store", "week", "price", "units", "cost", "cost_shifter", "promo", "comp_price", "income",
                *CONFOUNDERS, "_shock"]:
        assert col in a.panel.columns
    assert a.panel.equals(b.panel)
    assert a.truth.elasticity.shape == (4,)
    assert not simulate_market(4, 3, 5, seed=3, observed_confounders=False).panel.select(
        pl.col("^w[123]$")).width


def test_prices_follow_the_hidden_shock_only_when_confounded():
    conf = simulate_market(20, 10, 30, seed=0).panel
    free = simulate_market(20, 10, 30, seed=0, confounded=False).panel
    corr = lambda p: np.corrcoef(np.log(p["price"] / p["cost"]), p["_shock"])[0, 1]  # noqa: E731
    assert corr(conf) > 0.3
    assert abs(corr(free)) < 0.05


def test_instrument_moves_price_but_not_the_demand_shock():
    p = simulate_market(20, 10, 30, seed=1).panel
    z, lp = p["cost_shifter"].to_numpy(), np.log(p["price"].to_numpy())
    assert np.corrcoef(z, lp)[0, 1] > 0.2
    assert abs(np.corrcoef(z, p["_shock"].to_numpy())[0, 1]) < 0.05


def test_true_demand_is_constant_elasticity_and_decreasing():
    m = simulate_market(5, 2, 4, seed=2)
    rows = m.panel[:3]
    q1, q2 = m.truth.demand(rows, 2.0), m.truth.demand(rows, 2.2)
    assert (q2 < q1).all()
    e = np.log(q2 / q1) / np.log(1.1)
    assert np.allclose(e, m.truth.elasticity[rows["item"].to_numpy()])
