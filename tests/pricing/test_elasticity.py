"""Elasticity estimators: Taddy's OJ numbers, and recovery of planted truth on the simulator."""

import numpy as np
import polars as pl
import pytest

from shopml.data.market import simulate_market
from shopml.errors import ConfigError, DataError
from shopml.pricing.elasticity import estimate_elasticity

TADDY_BY_BRAND = {"dominicks": -3.378, "minute.maid": -3.321, "tropicana": -2.712}
CONTROLS = ["item", "store", "week", "promo", "comp_price", "income"]


@pytest.fixture(scope="module")
def market():
    m = simulate_market(50, 20, 52, seed=0)
    return m, m.panel.with_columns(pl.col("item").cast(pl.Utf8), pl.col("store").cast(pl.Utf8))


def test_oj_taddy_pooled_and_by_brand(real_file):
    d = pl.read_csv(real_file("dominicks-oj", "bds_oj.csv"))
    pooled = estimate_elasticity(d, y="sales", y_is_log=False, fixed_effects=["brand"])
    assert abs(pooled.estimate - (-3.139)) <= 0.01
    assert pooled.ci_low < pooled.estimate < pooled.ci_high
    by = estimate_elasticity(d, y="sales", y_is_log=False, segment="brand")
    got = {s["segment"]: s["estimate"] for s in by.segments}
    for brand, ref in TADDY_BY_BRAND.items():
        assert abs(got[brand] - ref) <= 0.01, (brand, got[brand])


def test_oj_store_week_file_gives_the_same_pooled_elasticity(real_file):
    d = pl.read_csv(real_file("dominicks-oj", "oj_store_week_3brands.csv"))
    r = estimate_elasticity(d, y="logmove", fixed_effects=["brand"])
    assert abs(r.estimate - (-3.139)) <= 0.01


def test_oj_dml_with_demographics(real_file):
    d = pl.read_csv(real_file("dominicks-oj", "oj_store_week_3brands.csv")).with_columns(pl.col("store").cast(pl.Utf8))
    demo = pl.read_csv(real_file("dominicks-oj", "orangeJuice_storedemo.csv"))
    demo = demo.rename({"STORE": "store"}).with_columns(pl.col("store").cast(pl.Utf8))
    d = d.join(demo, on="store")
    r = estimate_elasticity(d, "dml", y="logmove", controls=["store", "brand", "week", "feat", *demo.columns[1:]],
                            n_folds=3, n_estimators=100)
    assert -4.0 < r.ci_low < r.estimate < r.ci_high < -2.0


def test_naive_recovers_truth_without_confounding():
    m = simulate_market(20, 10, 30, seed=4, confounded=False)
    r = estimate_elasticity(m.panel, fixed_effects=["item"])
    assert abs(r.estimate - m.truth.elasticity.mean()) < 0.1


def test_naive_fails_dml_and_iv_recover_the_truth(market):
    m, p = market
    truth = m.truth.elasticity.mean()
    naive = estimate_elasticity(p, fixed_effects=["item"])
    assert naive.estimate - truth > 1.0  # biased towards zero by the price response to the shock
    iv = estimate_elasticity(p.drop(["w1", "w2", "w3"]), "iv", instrument="cost_shifter", fixed_effects=["item"])
    assert abs(iv.estimate - truth) < 0.1
    dml = estimate_elasticity(p, "dml", controls=CONTROLS + ["w1", "w2", "w3"], n_folds=3, n_estimators=100)
    assert abs(dml.estimate - truth) < 0.1
    assert dml.ci_low < dml.estimate < dml.ci_high


def test_dml_without_the_confounders_is_biased(market):
    m, p = market
    r = estimate_elasticity(p, "dml", controls=CONTROLS, n_folds=2, n_estimators=50)
    assert r.estimate - m.truth.elasticity.mean() > 1.0


def test_segments_recover_item_level_truth_with_iv():
    m = simulate_market(4, 30, 52, seed=5, elasticity_spread=0.8)
    r = estimate_elasticity(m.panel, "iv", instrument="cost_shifter", fixed_effects=["item"], segment="item")
    est = np.array([s["estimate"] for s in sorted(r.segments, key=lambda s: int(s["segment"]))])
    assert np.abs(est - m.truth.elasticity).max() < 0.25
    assert [s["n"] for s in r.segments] == [30 * 52] * 4


def test_bad_inputs_raise_clear_errors():
    d = pl.DataFrame({"price": [1.0, 2.0, -1.0], "log_units": [1.0, 2.0, 3.0], "z": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="column 'price'"):
        estimate_elasticity(d)
    with pytest.raises(DataError, match="missing"):
        estimate_elasticity(d, y="nope")
    with pytest.raises(ConfigError):
        estimate_elasticity(d[:2], method="ols")
    with pytest.raises(ConfigError, match="instrument"):
        estimate_elasticity(d[:2], method="iv")
