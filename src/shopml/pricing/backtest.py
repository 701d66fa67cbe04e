"""Backtest of pricing methods on the simulated confounded market, where the truth is known.

For each method we report the elasticity error (pooled: |mean estimate - mean true
elasticity|; ``item_mae``: mean over items of |estimate_i - true_i|) and the regret of the
optimizer that uses the method's demand model:

    regret = 1 - sum profit_true(chosen price) / sum profit_true(best price)

over item x store decision units, where "best" is the best price under the SAME constraints
computed with the TRUE expected demand, and ``violations`` counts chosen prices that break a
constraint (audited with :func:`~shopml.pricing.optimize.violations`).

Methods: ``naive`` (log-log OLS with item effects), ``dml`` (confounders w1..w3 observed as
controls), ``iv`` (cost-shifter instrument only), ``neural`` (monotone neural ensemble with
the same observed controls as DML) and, for contrast, ``dml_hidden`` / ``neural_hidden``
(confounders not given: both inherit the naive bias).

Example:
    >>> res = run_backtest(n_items=6, n_stores=4, n_weeks=30, neural_epochs=2, n_members=2, methods=["naive", "iv"])
    >>> [r["model"] for r in res["rows"]]
    ['naive', 'iv']
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from shopml.data.market import CONFOUNDERS, simulate_market
from shopml.evaluation.metrics import mae
from shopml.pricing.demand import NeuralDemand
from shopml.pricing.elasticity import estimate_elasticity
from shopml.pricing.loglinear import LogLinearDemand
from shopml.pricing.optimize import Constraints, candidate_prices, optimize_price, violations
from shopml.pricing.price_book import DEFAULT_LAST_WEEKS, DEFAULT_MAX_CHANGE

__all__ = ["run_backtest", "TrueDemand", "DEFAULT_CONSTRAINTS", "METHODS"]

# The price book's rules (4 weeks of context, ±30%), so the regret measured here is the
# regret of what the service and ``shopml price optimize`` propose.
DEFAULT_CONSTRAINTS = Constraints(max_change=DEFAULT_MAX_CHANGE, min_margin=0.05)
METHODS = ["naive", "dml", "iv", "neural", "dml_hidden", "neural_hidden"]
BASE = ["item", "store", "week", "promo", "log_comp", "income"]


class TrueDemand:
    """The simulator's expected demand as a demand model (``curve`` like the estimators)."""

    def __init__(self, truth):
        self.truth = truth

    def curve(self, context: pl.DataFrame, prices) -> np.ndarray:
        prices = np.asarray(prices, dtype=float)
        rep = context.select(pl.all().repeat_by(len(prices)).explode())
        q = self.truth.demand(rep, np.tile(prices, context.height))
        return q.reshape(context.height, len(prices)).mean(0)[None, :]


def _prepare(panel: pl.DataFrame) -> pl.DataFrame:
    return panel.with_columns(pl.col("item").cast(pl.Utf8), pl.col("store").cast(pl.Utf8),
                              pl.col("comp_price").log().alias("log_comp"))


def _estimate(method: str, data: pl.DataFrame, threads: int):
    if method == "naive":
        return estimate_elasticity(data, "naive", fixed_effects=["item"])
    if method in ("dml", "dml_hidden"):
        controls = BASE + (CONFOUNDERS if method == "dml" else [])
        return estimate_elasticity(data, "dml", controls=controls, n_estimators=100, threads=threads)
    if method == "iv":
        return estimate_elasticity(data, "iv", instrument="cost_shifter", fixed_effects=["item"])
    raise ValueError(method)


def _fit_neural(method, data, epochs, n_members, threads, seed):
    numeric = ["promo", "log_comp", "income", "week"] + (CONFOUNDERS if method == "neural" else [])
    return NeuralDemand(categorical=["item", "store"], numeric=numeric, n_members=n_members, epochs=epochs,
                        batch_size=512, seed=seed, threads=threads).fit(data)


def _decision_units(data: pl.DataFrame, n_units: int, last_weeks: int, seed: int):
    """(context rows, current price, cost) per sampled item x store over its last weeks."""
    wmax = data["week"].max()
    recent = data.filter(pl.col("week") > wmax - last_weeks)
    keys = recent.select("item", "store").unique().sort("item", "store")
    pick = np.random.default_rng(seed).permutation(keys.height)[:n_units]
    units = []
    for item, store in keys[pick].iter_rows():
        ctx = recent.filter((pl.col("item") == item) & (pl.col("store") == store))
        units.append((ctx, float(np.round(ctx["price"].median(), 2)), float(ctx["cost"].mean())))
    return units


def _regret(model, truth_model, units, constraints) -> tuple[float, int]:
    chosen_total, best_total, bad = 0.0, 0.0, 0
    for ctx, current, cost in units:
        d = optimize_price(model, ctx, current_price=current, cost=cost, constraints=constraints, explain=False)
        bad += bool(violations(d["price"], current_price=current, cost=cost, constraints=constraints))
        grid = candidate_prices(current_price=current, cost=cost, constraints=constraints)
        true_profit = (grid - cost) * truth_model.curve(ctx, grid)[0]
        chosen_total += float(true_profit[np.flatnonzero(grid == d["price"])[0]])
        best_total += float(true_profit.max())
    return 1.0 - chosen_total / best_total, bad


def run_backtest(n_items=30, n_stores=10, n_weeks=52, seed=0, *, methods=None, constraints=DEFAULT_CONSTRAINTS,
                 n_units=100, last_weeks=DEFAULT_LAST_WEEKS, neural_epochs=15, n_members=3, threads=2) -> dict:
    """Simulate a confounded market, estimate with each method, optimize, score against truth."""
    market = simulate_market(n_items, n_stores, n_weeks, confounded=True, seed=seed)
    data = _prepare(market.panel)
    true_e = market.truth.elasticity
    truth_model = TrueDemand(market.truth)
    units = _decision_units(data, n_units, last_weeks, seed)
    rows = []
    for method in methods or METHODS:
        t0 = time.perf_counter()
        if method.startswith("neural"):
            model = _fit_neural(method, data, neural_epochs, n_members, threads, seed)
            per_item = model.average_elasticity(data, by="item")
            est_i = np.array([r["elasticity"] for r in sorted(per_item, key=lambda r: int(r["segment"]))])
            est, se = float(est_i.mean()), float(np.mean([r["se"] for r in per_item]))
        else:
            res = _estimate(method, data, threads)
            est, se, est_i = res.estimate, res.se, np.full(len(true_e), res.estimate)
            model = LogLinearDemand(elasticity=est, se=res.se, keys=["item", "store"]).fit(data)
        regret, bad = _regret(model, truth_model, units, constraints)
        rows.append({"model": method, "elasticity": est, "se": se, "true_elasticity": float(true_e.mean()),
                     "elasticity_error": abs(est - float(true_e.mean())),
                     "item_mae": mae(true_e, est_i), "regret": regret, "violations": bad,
                     "seconds": time.perf_counter() - t0})
    return {"rows": rows, "n_rows": data.height, "n_units": len(units), "constraints": constraints.__dict__}
