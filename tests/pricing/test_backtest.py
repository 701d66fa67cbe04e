"""Backtest against the simulator's truth: debiased methods have small error and regret."""

import numpy as np
import pytest

from shopml.data.market import simulate_market
from shopml.pricing.backtest import (
    DEFAULT_CONSTRAINTS,
    TrueDemand,
    _decision_units,
    _prepare,
    run_backtest,
)
from shopml.pricing.optimize import candidate_prices, optimize_price, violations


@pytest.fixture(scope="module")
def result():
    return run_backtest(40, 15, 52, seed=1, methods=["naive", "iv", "dml", "neural"], n_units=40, neural_epochs=6,
                        n_members=2)


def test_debiased_methods_recover_elasticity_and_price_well(result):
    rows = {r["model"]: r for r in result["rows"]}
    for m in ("iv", "dml"):
        assert rows[m]["elasticity_error"] < 0.1, rows[m]
        assert rows[m]["regret"] <= 0.01, rows[m]
    assert rows["neural"]["elasticity_error"] < 0.3
    assert rows["naive"]["elasticity_error"] > 1.0  # the confounded regression fails...
    assert rows["naive"]["regret"] > rows["iv"]["regret"]  # ...and prices worse


@pytest.fixture(scope="module")
def market_units():
    """The fixture's market and decision units: (context, current price, cost) x 40."""
    market = simulate_market(40, 15, 52, confounded=True, seed=1)
    return TrueDemand(market.truth), _decision_units(_prepare(market.panel), 40, 4, 1)


def _true_profit(truth, ctx, cost, prices):
    return (prices - cost) * truth.curve(ctx, prices)[0]


def test_optimizer_on_the_true_demand_finds_the_true_best_price(market_units):
    """Zero regret for the oracle: the optimizer is exact over the same candidate set."""
    truth, units = market_units
    for ctx, current, cost in units:
        d = optimize_price(truth, ctx, current_price=current, cost=cost, constraints=DEFAULT_CONSTRAINTS, explain=False)
        grid = candidate_prices(current_price=current, cost=cost, constraints=DEFAULT_CONSTRAINTS)
        assert not violations(d["price"], current_price=current, cost=cost, constraints=DEFAULT_CONSTRAINTS)
        assert d["profit"] == pytest.approx(_true_profit(truth, ctx, cost, grid).max(), rel=1e-9)


def test_no_violations_and_debiased_methods_beat_keeping_prices(result, market_units):
    """Baseline: keep each current price (or the feasible price nearest it). (The 6-epoch,
    2-member neural ensemble of this fixture does not beat it: 0.036 vs 0.032 when written.)"""
    truth, units = market_units
    kept = best = 0.0
    for ctx, current, cost in units:
        grid = candidate_prices(current_price=current, cost=cost, constraints=DEFAULT_CONSTRAINTS)
        profit = _true_profit(truth, ctx, cost, grid)
        kept, best = kept + profit[np.argmin(np.abs(grid - current))], best + profit.max()
    keep_regret = 1 - kept / best
    rows = {r["model"]: r for r in result["rows"]}
    assert all(r["violations"] == 0 and r["regret"] >= 0 for r in rows.values())
    for m in ("iv", "dml"):
        assert rows[m]["regret"] < keep_regret, (m, rows[m]["regret"], keep_regret)
