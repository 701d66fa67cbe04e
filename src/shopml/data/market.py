"""A simulated retail price market with known demand, for testing pricing methods.

Demand (per item i, store s, week t), constant own-price elasticity ``beta_i``::

    log q = a_i + b_s + season(t) + gamma*promo + delta*log(comp_price) + beta_i*log p + shock + eps

Pricing (the confounding): the store manager sees the demand ``shock`` and raises prices
when demand is high, so ``log p`` and ``shock`` move together and a regression of log q
on log p is biased upwards (it can even come out positive). The ``cost_shifter`` moves
unit cost and therefore price, but does not enter demand: a valid instrument. The shock
is a nonlinear function of three confounder columns ``w1..w3``; with
``observed_confounders=True`` they are in the panel (so DML can partial them out), with
``False`` they are hidden (only the instrument identifies the elasticity).

Example:
    >>> m = simulate_market(n_items=5, n_stores=4, n_weeks=10, seed=1)
    >>> m.panel.shape[0], sorted(m.truth.elasticity.shape)
    (200, [5])
    >>> bool((m.truth.demand(m.panel) > 0).all())
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

__all__ = ["simulate_market", "Market", "MarketTruth"]

CONFOUNDERS = ["w1", "w2", "w3"]


@dataclass
class MarketTruth:
    """Ground truth of a simulated market.

    ``elasticity[i]`` is item i's constant own-price elasticity; ``demand(frame, price=None)``
    gives EXPECTED units (shock included, eps averaged out) for the rows of ``frame`` at
    ``price`` (default: the frame's own price column), so regret can be computed exactly.
    """

    elasticity: np.ndarray
    item_effect: np.ndarray
    store_effect: np.ndarray
    promo_effect: float
    cross_elasticity: float
    noise_sd: float
    shock: np.ndarray = field(repr=False)

    def log_demand(self, frame: pl.DataFrame, price=None) -> np.ndarray:
        """Expected log units (without the idiosyncratic noise) of each row at ``price``."""
        item = frame["item"].cast(pl.Int64).to_numpy()
        store = frame["store"].cast(pl.Int64).to_numpy()
        price = frame["price"].to_numpy() if price is None else np.asarray(price, dtype=float)
        return (
            self.item_effect[item]
            + self.store_effect[store]
            + _season(frame["week"].to_numpy())
            + self.promo_effect * frame["promo"].to_numpy()
            + self.cross_elasticity * np.log(frame["comp_price"].to_numpy())
            + self.elasticity[item] * np.log(price)
            + frame["_shock"].to_numpy()
        )

    def demand(self, frame: pl.DataFrame, price=None) -> np.ndarray:
        """Expected units: exp(log demand + noise_sd^2/2) (lognormal mean)."""
        return np.exp(self.log_demand(frame, price) + 0.5 * self.noise_sd**2)


@dataclass
class Market:
    """``panel``: the observed data; ``truth``: what generated it.

    ``panel`` also carries the hidden ``_shock`` column (underscore = not observable; every
    shopml estimator ignores it) so ``truth.demand`` can be evaluated on any of its rows.
    """

    panel: pl.DataFrame
    truth: MarketTruth


def _season(week: np.ndarray) -> np.ndarray:
    return 0.15 * np.sin(2 * np.pi * week / 52.0)


def _shock(w: np.ndarray, scale: float) -> np.ndarray:
    # Nonlinear in the confounders so that a linear control would not remove it, but a
    # flexible first stage (DML) can.
    raw = 0.8 * w[:, 0] + 0.5 * (w[:, 1] ** 2 - 1.0) + 0.4 * np.tanh(2 * w[:, 2])
    return scale * raw


def simulate_market(n_items: int = 50, n_stores: int = 20, n_weeks: int = 52, confounded: bool = True, seed: int = 0,
                    *, elasticity_mean: float = -2.5, elasticity_spread: float = 0.3,
                    observed_confounders: bool = True, shock_sd: float = 1.0, shock_pass_through: float = 0.15,
                    instrument_strength: float = 0.2, noise_sd: float = 0.25, promo_rate: float = 0.15,
                    markup_noise: float = 0.1) -> Market:
    """Simulate an item × store × week panel with a known demand function.

    Columns: item, store, week, price, units, log_units, cost, cost_shifter (instrument),
    promo, comp_price, income (store demographic), w1..w3 (observed confounders, only when
    ``observed_confounders``) and the hidden ``_shock``. ``confounded=False`` sets prices
    independently of the shock. Elasticities are drawn uniformly in
    ``elasticity_mean ± elasticity_spread``.
    """
    rng = np.random.default_rng(seed)
    n = n_items * n_stores * n_weeks
    item = np.repeat(np.arange(n_items), n_stores * n_weeks)
    store = np.tile(np.repeat(np.arange(n_stores), n_weeks), n_items)
    week = np.tile(np.arange(n_weeks), n_items * n_stores)

    elasticity = rng.uniform(elasticity_mean - elasticity_spread, elasticity_mean + elasticity_spread, n_items)
    item_effect = rng.normal(4.0, 0.5, n_items)
    income = rng.normal(0.0, 1.0, n_stores)
    store_effect = 0.3 * income + rng.normal(0.0, 0.2, n_stores)
    base_cost = rng.uniform(1.0, 5.0, n_items)

    w = rng.normal(0.0, 1.0, (n, 3))
    shock = _shock(w, shock_sd)
    z = rng.normal(0.0, 1.0, n)
    promo = (rng.random(n) < promo_rate).astype(np.int8)
    # Competitor prices follow the item's cost level with their own noise: exogenous here.
    comp_price = base_cost[item] * 1.6 * np.exp(rng.normal(0.0, 0.1, n))

    cost = base_cost[item] * np.exp(instrument_strength * z)
    pass_through = shock_pass_through if confounded else 0.0
    markup = 1.6 * np.exp(pass_through * shock - 0.15 * promo + rng.normal(0.0, markup_noise, n))
    price = np.round(cost * markup, 2)

    truth = MarketTruth(elasticity, item_effect, store_effect, 0.4, 0.5, noise_sd, shock)
    frame = pl.DataFrame(
        {
            "item": item, "store": store, "week": week, "price": price, "cost": np.round(cost, 4),
            "cost_shifter": z, "promo": promo, "comp_price": np.round(comp_price, 2),
            "income": income[store], "w1": w[:, 0], "w2": w[:, 1], "w3": w[:, 2], "_shock": shock,
        }
    )
    log_units = truth.log_demand(frame) + rng.normal(0.0, noise_sd, n)
    frame = frame.with_columns(pl.Series("log_units", log_units), pl.Series("units", np.exp(log_units)))
    if not observed_confounders:
        frame = frame.drop(CONFOUNDERS)
    return Market(frame, truth)
