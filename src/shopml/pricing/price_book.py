"""The price book: a fitted demand model plus, per item, its recent selling context
(store × week rows), current price and unit cost. It answers "best price under these
constraints" and "demand curve" by calling :mod:`shopml.pricing` (the optimizer and the
demand model's own curves); it holds no modelling logic of its own. The service
(``POST /v1/prices/optimize``) and ``shopml price optimize`` both price through it, so they
share one set of rules, documented here once:

- context: the item's rows from the last ``DEFAULT_LAST_WEEKS`` (4) weeks of the panel
  (all rows when the table has no ``week`` column);
- current price: the median price of that context, to the cent; unit cost: its mean
  ``cost`` column (overridable per request);
- a request with none of ``max_change``, ``min_price``, ``max_price`` gets
  ``max_change=DEFAULT_MAX_CHANGE`` (0.3): the demand model is not trusted far from the
  prices it has seen;
- without a unit cost the objective is revenue (the answer's ``objective`` says which);
- demand: the book may hold, beside the neural demand, log-linear demands with
  confounding-adjusted elasticities (DML, IV) and a per-item choice among them made on
  validation weeks (:mod:`shopml.pricing.choice`); every answer names the one it used
  (``demand_model``). A price group is priced with the neural demand (one ensemble for the
  summed objective).

Example:
    >>> book = PriceBook().fit(demand, panel)                 # doctest: +SKIP
    >>> book.optimize_item("i007", max_change=0.1)["price"]   # doctest: +SKIP
    3.49
"""

from __future__ import annotations

import numpy as np
import polars as pl

from shopml.artifacts import read_model_dir, write_model_dir
from shopml.errors import ArtifactError, DataError, NotFittedError

__all__ = ["PriceBook"]

KIND = "price-book"
# The one place these defaults live: PriceBook's parameters, ``shopml price optimize``'s
# options and the backtest (:mod:`shopml.pricing.backtest`) read them from here, so the price
# the service proposes, the CLI's and the backtest's regret all follow the same rules.
# 4 weeks, not 8: the demand model averages its prediction over the context rows, so they
# should look like next week (this month's promotions, competitor prices and store mix); 4
# weeks x stores still gives several rows per item to average over, and 8 weeks mixes in
# promotions that have ended. The backtest's decision units use the same window.
DEFAULT_LAST_WEEKS = 4
# ±30% when the request bounds nothing: a monotone demand net extrapolates (it has seen the
# prices near the current one, not half or double it), and an unbounded optimum lands on
# the grid's edge, not on a price anyone observed. A request that gives any bound
# (min_price, max_price or max_change) is trusted as given. The backtest's regret is measured
# under the same cap.
DEFAULT_MAX_CHANGE = 0.3
_CONSTRAINTS = ("min_price", "max_price", "max_change", "min_margin", "endings", "ladder")


class PriceBook:
    """Serve price proposals and demand curves for the items of a fitted demand model.

    Example:
        >>> PriceBook().get_params() == {"item": "item", "last_weeks": 4, "default_max_change": 0.3}
        True
    """

    def __init__(self, *, item: str = "item", last_weeks: int = DEFAULT_LAST_WEEKS,
                 default_max_change: float | None = DEFAULT_MAX_CHANGE):
        self.item, self.last_weeks, self.default_max_change = item, last_weeks, default_max_change

    def get_params(self) -> dict:
        return {"item": self.item, "last_weeks": self.last_weeks, "default_max_change": self.default_max_change}

    def fit(self, demand, panel: pl.DataFrame, *, alternatives: dict | None = None,
            item_model: dict | None = None, default_model: str = "neural") -> PriceBook:
        """Remember each item's rows in the panel's last ``last_weeks`` weeks (the context the
        demand model averages over), its median price there (current price) and mean unit cost.
        An item with no rows in those weeks is not in the book. ``alternatives`` (name ->
        fitted demand, e.g. ``loglinear-dml``) and ``item_model`` (item -> name) let items be
        priced by another demand than ``demand`` (named ``neural``); other items use
        ``default_model``."""
        self.demands_ = {"neural": demand, **(alternatives or {})}
        self.item_model_ = {str(k): v for k, v in (item_model or {}).items() if v in self.demands_}
        self.default_model_ = default_model if default_model in self.demands_ else "neural"
        price = getattr(demand, "price", "price")
        recent = panel
        if "week" in panel.columns:
            recent = panel.filter(pl.col("week") > panel["week"].max() - self.last_weeks)
        recent = recent.with_columns(pl.col(self.item).cast(pl.Utf8))
        stats = recent.group_by(self.item).agg(pl.col(price).median().alias("p"),
                                               (pl.col("cost").mean() if "cost" in recent.columns
                                                else pl.lit(None)).alias("c")).sort(self.item)
        self.demand_ = demand
        self.item_ids_ = stats[self.item].to_list()
        self.current_price_ = [round(float(p), 2) for p in stats["p"]]
        self.cost_ = [None if c is None else float(c) for c in stats["c"]]
        self.context_ = recent
        self._index = {i: n for n, i in enumerate(self.item_ids_)}
        return self

    def _lookup(self, item_id: str) -> tuple[pl.DataFrame, float, float | None]:
        if not hasattr(self, "item_ids_"):
            raise NotFittedError("PriceBook is not fitted")
        if item_id not in self._index:
            raise DataError(f"unknown item id {item_id!r}", column="item_id")
        n = self._index[item_id]
        ctx = self.context_.filter(pl.col(self.item) == item_id)
        return ctx, self.current_price_[n], self.cost_[n]

    def demand_model(self, item_id: str) -> str:
        """The name of the demand model that prices ``item_id``."""
        return self.item_model_.get(item_id, self.default_model_) if hasattr(self, "item_model_") else "neural"

    def _demand(self, item_id: str):
        return getattr(self, "demands_", {"neural": self.demand_})[self.demand_model(item_id)]

    def decide(self, item_id: str, *, objective: str = "profit", unit_cost: float | None = None,
               current_price: float | None = None, explain: bool = True, **constraints) -> dict:
        """The optimizer's full answer for ``item_id`` under the book's rules (see the module
        docstring): :func:`shopml.pricing.optimize.optimize_price`'s dict plus ``item_id``.
        Constraints as in :class:`~shopml.pricing.optimize.Constraints` (``endings``/``ladder`` lists).

        Example:
            >>> book.decide("i007", max_change=0.1, endings=[0.99])["price"]   # doctest: +SKIP
            3.99
        """
        from shopml.pricing.optimize import Constraints, optimize_price

        ctx, price_now, cost = self._lookup(item_id)
        cost = cost if unit_cost is None else unit_cost
        kwargs = {k: v for k, v in constraints.items() if k in _CONSTRAINTS and v is not None}
        kwargs.update({k: tuple(kwargs[k]) for k in ("endings", "ladder") if k in kwargs})
        if "max_change" not in kwargs and "min_price" not in kwargs and "max_price" not in kwargs:
            kwargs["max_change"] = self.default_max_change  # never extrapolate far from observed prices
        d = optimize_price(self._demand(item_id), ctx, current_price=current_price or price_now, cost=cost,
                           constraints=Constraints(**kwargs), objective=objective if cost is not None else "revenue",
                           explain=explain)
        return {"item_id": item_id, **d, "demand_model": self.demand_model(item_id)}

    def decide_group(self, item_ids, *, objective: str = "profit", unit_costs=None, **constraints) -> dict:
        """One shared price for items that must move together (one shelf price, a shared
        ladder): :func:`shopml.pricing.optimize.optimize_group` over the items' contexts, under
        the book's rules (the default ±``default_max_change`` cap applies around *every*
        item's current price). ``unit_costs`` (one per item, None = the book's) override costs;
        the objective is revenue unless every item has a unit cost.

        Example:
            >>> book.decide_group(["i007", "i008"], ladder=[2.99, 3.49])["price"]   # doctest: +SKIP
            3.49
        """
        from shopml.pricing.optimize import Constraints, optimize_group

        item_ids = [str(i) for i in item_ids]
        if len(item_ids) < 2 or len(set(item_ids)) != len(item_ids):
            raise DataError("a price group needs at least two distinct item ids", column="item_ids")
        looked = [self._lookup(i) for i in item_ids]
        costs = list(unit_costs) if unit_costs is not None else [c for _, _, c in looked]
        if len(costs) != len(item_ids):
            raise DataError("give one unit cost per item of the group", column="unit_costs")
        costs = [c if c is not None else looked[n][2] for n, c in enumerate(costs)]
        kwargs = {k: v for k, v in constraints.items() if k in _CONSTRAINTS and v is not None}
        kwargs.update({k: tuple(kwargs[k]) for k in ("endings", "ladder") if k in kwargs})
        if "max_change" not in kwargs and "min_price" not in kwargs and "max_price" not in kwargs:
            kwargs["max_change"] = self.default_max_change
        objective = objective if all(c is not None for c in costs) else "revenue"
        d = optimize_group(self.demand_, [ctx for ctx, _, _ in looked], current_prices=[p for _, p, _ in looked],
                           costs=costs, constraints=Constraints(**kwargs), objective=objective)
        items = [{"item_id": i, "price": it["price"], "expected_units": it["units"], "current_price": looked[n][1],
                  "unit_cost": costs[n]} for n, (i, it) in enumerate(zip(item_ids, d["items"]))]
        return {"item_ids": item_ids, "price": d["price"], "objective": objective, "value": d["value"],
                "value_interval": {"low": d["value_low"], "high": d["value_high"]}, "items": items,
                "demand_model": "neural"}

    def optimize_item(self, item_id: str, *, objective: str = "profit", unit_cost: float | None = None,
                      current_price: float | None = None, **constraints) -> dict:
        """The best feasible price of ``item_id`` in the service's shape (see :meth:`decide`)."""
        d = self.decide(item_id, objective=objective, unit_cost=unit_cost, current_price=current_price, **constraints)
        cost = d["cost"]
        band = lambda name: {"low": d[f"{name}_low"], "high": d[f"{name}_high"]} if f"{name}_low" in d else None
        return {"item_id": item_id, "price": d["price"], "expected_units": d["units"], "revenue": d["revenue"],
                "profit": d.get("profit"), "units_interval": band("units"), "profit_interval": band("profit"),
                "binding": list(d.get("binding", [])), "curve": d["curve"], "current_price": d["current_price"],
                "unit_cost": cost, "objective": d["objective"], "demand_model": d["demand_model"]}

    def curve(self, item_id: str, *, points: int = 25, unit_cost: float | None = None, span: float = 0.5) -> dict:
        """Units (with 5-95% band), elasticity, revenue and profit on ``points`` prices within
        ±``span`` of the current price."""
        ctx, price_now, cost = self._lookup(item_id)
        cost = cost if unit_cost is None else unit_cost
        prices = np.round(np.linspace(price_now * (1 - span), price_now * (1 + span), points), 4)
        demand = self._demand(item_id)
        units = np.asarray(demand.curve(ctx, prices), dtype=float)
        out = {"item_id": item_id, "prices": prices.tolist(), "units": units.mean(0).tolist(),
               "units_low": np.quantile(units, 0.05, 0).tolist(), "units_high": np.quantile(units, 0.95, 0).tolist(),
               "revenue": (prices * units.mean(0)).tolist(), "current_price": price_now,
               "profit": None if cost is None else ((prices - cost) * units.mean(0)).tolist(),
               "demand_model": self.demand_model(item_id)}
        if hasattr(demand, "elasticity_curve"):
            out["elasticity"] = np.asarray(demand.elasticity_curve(item_id, prices)["elasticity"]).tolist()
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Context rows and prices as JSON; the demand model in ``demand/`` through its own
        ``save`` (safetensors; no pickle)."""
        from pathlib import Path

        if not hasattr(self, "item_ids_"):
            raise NotFittedError("PriceBook is not fitted")
        meta = {"item_ids": self.item_ids_, "current_price": self.current_price_, "cost": self.cost_,
                "context": self.context_.to_dict(as_series=False),
                "demand_class": f"{type(self.demand_).__module__}.{type(self.demand_).__qualname__}",
                "alternatives": sorted(n for n in getattr(self, "demands_", {}) if n != "neural"),
                "item_model": getattr(self, "item_model_", {}), "default_model": getattr(self, "default_model_", "neural")}
        write_model_dir(path, kind=KIND, params=self.get_params(), tensors={}, meta=meta)
        self.demand_.save(Path(path) / "demand")
        for name in meta["alternatives"]:  # log-linear demands, each in its own folder
            self.demands_[name].save(Path(path) / f"demand-{name}")

    @classmethod
    def load(cls, path) -> PriceBook:
        from pathlib import Path

        from shopml.pricing.demand import NeuralDemand
        from shopml.pricing.loglinear import LogLinearDemand

        md = read_model_dir(path, kind=KIND)
        if md.meta.get("demand_class") != "shopml.pricing.demand.NeuralDemand":
            raise ArtifactError(f"{path}: unsupported demand model {md.meta.get('demand_class')!r}")
        self = cls(**{k: md.params[k] for k in ("item", "last_weeks", "default_max_change")})
        self.demand_ = NeuralDemand.load(Path(path) / "demand")
        self.item_ids_, self.current_price_, self.cost_ = md.meta["item_ids"], md.meta["current_price"], md.meta["cost"]
        self.context_ = pl.DataFrame(md.meta["context"])
        self._index = {i: n for n, i in enumerate(self.item_ids_)}
        self.demands_ = {"neural": self.demand_, **{n: LogLinearDemand.load(Path(path) / f"demand-{n}")
                                                     for n in md.meta.get("alternatives", [])}}
        self.item_model_ = md.meta.get("item_model", {})
        self.default_model_ = md.meta.get("default_model", "neural")
        return self
