"""Backtest against the simulator's truth: debiased methods have small error and regret."""

import pytest

from shopml.pricing.backtest import run_backtest


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


def test_no_violations_and_regret_in_range(result):
    for r in result["rows"]:
        assert r["violations"] == 0
        assert 0.0 <= r["regret"] < 1.0
