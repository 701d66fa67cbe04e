"""Constrained price optimization over an exact candidate grid.

Every candidate price is generated from the constraints and then filtered by
:func:`violations`, the same predicate used to audit results, so a proposed price never
violates a constraint. The objective (revenue or profit) is evaluated on every candidate
with the demand model's ensemble members, which gives the curves and the intervals. A
request with no feasible candidate raises :class:`~shopml.errors.InfeasibleError` naming
the conflicting bounds. A constraint *binds* when dropping it (alone) would move the
optimum to a strictly better price.

A demand model is anything with ``curve(context, prices) -> units[n_members, n_prices]``
(:class:`~shopml.pricing.demand.NeuralDemand`, :class:`~shopml.pricing.loglinear.LogLinearDemand`).

Example:
    >>> import numpy as np
    >>> class Iso:  # constant elasticity -3, one member
    ...     def curve(self, context, prices): return 100 * np.asarray(prices)[None, :] ** -3.0
    >>> d = optimize_price(Iso(), None, current_price=2.0, cost=1.0,
    ...                    constraints=Constraints(max_change=0.1, endings=(0.49, 0.99)))
    >>> d["price"], d["binding"]
    (1.99, ['max_change', 'endings'])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from shopml.errors import ConfigError, InfeasibleError

__all__ = ["Constraints", "violations", "candidate_prices", "optimize_price", "optimize_group"]

_MAX_GRID = 400


@dataclass(frozen=True)
class Constraints:
    """Price rules for one item. ``max_change``: |p / current - 1| <= max_change.
    ``min_margin``: (p - cost) / p >= min_margin. ``endings``: allowed cents, e.g. (0.99, 0.49).
    ``ladder``: the only allowed price points (a group's shared ladder)."""

    min_price: float | None = None
    max_price: float | None = None
    max_change: float | None = None
    min_margin: float | None = None
    endings: tuple[float, ...] | None = None
    ladder: tuple[float, ...] | None = None

    def active(self) -> list[str]:
        return [k for k, v in asdict(self).items() if v is not None]


def violations(price: float, *, current_price: float | None, cost: float | None, constraints: Constraints) -> list[str]:
    """Names of the constraints ``price`` violates (empty list = feasible)."""
    c, p, out = constraints, float(price), []
    if not (p > 0 and math.isfinite(p)):
        return ["positive"]
    if c.min_price is not None and p < c.min_price:
        out.append("min_price")
    if c.max_price is not None and p > c.max_price:
        out.append("max_price")
    if c.max_change is not None and current_price is not None and abs(p - current_price) > c.max_change * current_price:
        out.append("max_change")
    if c.min_margin is not None and cost is not None and (p - cost) < c.min_margin * p:
        out.append("min_margin")
    if c.endings is not None and not any(abs((p - math.floor(p + 1e-9)) - e) < 1e-6 for e in c.endings):
        out.append("endings")
    if c.ladder is not None and not any(abs(p - q) < 1e-9 for q in c.ladder):
        out.append("ladder")
    return out


def _bounds(current_price, cost, c: Constraints) -> tuple[float, float, list[str]]:
    lo, hi, why = 0.01, math.inf, []
    if c.min_price is not None:
        lo = max(lo, c.min_price); why.append(f"min_price {c.min_price:g}")
    if c.max_price is not None:
        hi = min(hi, c.max_price); why.append(f"max_price {c.max_price:g}")
    if c.max_change is not None and current_price is not None:
        lo, hi = max(lo, current_price * (1 - c.max_change)), min(hi, current_price * (1 + c.max_change))
        why.append(f"max_change ±{c.max_change:g} around {current_price:g}")
    if c.min_margin is not None and cost is not None:
        if c.min_margin >= 1:
            raise InfeasibleError(f"min_margin {c.min_margin:g} must be below 1")
        lo = max(lo, cost / (1 - c.min_margin)); why.append(f"min_margin {c.min_margin:g} on cost {cost:g}")
    return lo, hi, why


def candidate_prices(*, current_price=None, cost=None, constraints=Constraints(), grid_step=0.01) -> np.ndarray:
    """All feasible candidate prices (sorted). Raises InfeasibleError when there are none."""
    c = constraints
    lo, hi, why = _bounds(current_price, cost, c)
    if c.ladder is not None:
        raw = np.array(sorted(set(float(x) for x in c.ladder)))
    else:
        if not math.isfinite(hi):
            ref = current_price or cost or lo
            hi = max(lo, ref) * 3.0 + 1.0  # no upper bound: search to 3x the reference (+1: any ending fits)
        if c.endings is not None:
            base = np.arange(math.floor(lo) - 1, math.ceil(hi) + 1, dtype=float)
            raw = np.round((base[:, None] + np.asarray(c.endings, dtype=float)[None, :]).ravel(), 2)
        else:
            step = max(grid_step, round((hi - lo) / _MAX_GRID, 2))
            raw = np.round(np.arange(math.ceil(lo * 100) / 100, hi + 1e-9, step), 2)
            raw = np.concatenate([raw, [math.floor(hi * 100) / 100]])
    keep = [p for p in np.unique(raw) if not violations(p, current_price=current_price, cost=cost, constraints=c)]
    if not keep:
        detail = "; ".join(why) or "no bounds"
        extra = f", endings {c.endings}" if c.endings else ""
        extra += f", ladder of {len(c.ladder)} prices" if c.ladder else ""
        raise InfeasibleError(f"no price satisfies the constraints: allowed range [{lo:.4g}, {hi:.4g}] from "
                              f"{detail}{extra}")
    return np.array(keep, dtype=float)


def _objective(prices, units, cost, objective):
    if objective == "revenue":
        return prices[None, :] * units
    if objective == "profit":
        if cost is None:
            raise ConfigError("objective 'profit' needs a unit cost")
        return (prices[None, :] - cost) * units
    raise ConfigError(f"unknown objective {objective!r}: use 'profit' or 'revenue'")


def _band(x):
    return float(x.mean()), float(np.quantile(x, 0.05)), float(np.quantile(x, 0.95))


def _solve(curve_fn, current_price, cost, constraints, objective, grid_step):
    prices = candidate_prices(current_price=current_price, cost=cost, constraints=constraints, grid_step=grid_step)
    units = np.asarray(curve_fn(prices), dtype=float)
    value = _objective(prices, units, cost, objective)
    best = int(np.argmax(value.mean(0)))
    return prices, units, value, best


def optimize_price(demand, context, *, current_price=None, cost=None, constraints=Constraints(),
                   objective="profit", grid_step=0.01, explain=True) -> dict:
    """Best feasible price for one item (or item x store) whose context rows are ``context``.

    Returns plain numbers and arrays: ``price``, ``units``/``revenue``/``profit`` with
    ``_low``/``_high`` (5-95% across the demand ensemble), the model's values at
    ``current_price``, ``binding`` constraint names and ``curve`` (prices, units, revenue, profit
    and bands) for plots. ``explain=False`` skips the binding analysis (faster).
    """
    fn = lambda p: demand.curve(context, p)  # noqa: E731
    return _decide(fn, current_price, cost, constraints, objective, grid_step, explain)


def _decide(fn, current_price, cost, constraints, objective, grid_step, explain=True) -> dict:
    prices, units, value, best = _solve(fn, current_price, cost, constraints, objective, grid_step)
    p = float(prices[best])
    revenue = prices[None, :] * units
    profit = (prices[None, :] - cost) * units if cost is not None else None
    out = {"price": p, "current_price": current_price, "cost": cost, "objective": objective}
    for name, arr in [("units", units), ("revenue", revenue), ("profit", profit)]:
        if arr is not None:
            out[name], out[f"{name}_low"], out[f"{name}_high"] = _band(arr[:, best])
    if current_price is not None:
        now = np.asarray(fn(np.array([current_price])), dtype=float)[:, 0]
        out["current_units"] = float(now.mean())
        out["current_value"] = float(_objective(np.array([current_price]), now[:, None], cost, objective).mean())
    if explain:  # which constraints bind: one re-solve per active constraint
        out["binding"] = _binding(fn, current_price, cost, constraints, objective, grid_step, float(value.mean(0)[best]))
    out["curve"] = {"prices": prices, "units": units.mean(0), "units_low": np.quantile(units, 0.05, 0),
                    "units_high": np.quantile(units, 0.95, 0), "revenue": revenue.mean(0)}
    if profit is not None:
        out["curve"].update(profit=profit.mean(0), profit_low=np.quantile(profit, 0.05, 0),
                            profit_high=np.quantile(profit, 0.95, 0))
    return out


def _binding(fn, current_price, cost, constraints, objective, grid_step, best_value) -> list[str]:
    names = [n for n in constraints.active() if n != "max_change" or current_price is not None]
    binds = []
    for name in names:
        relaxed = replace(constraints, **{name: None})
        try:
            prices, _, value, best = _solve(fn, current_price, cost, relaxed, objective, grid_step)
        except InfeasibleError:
            continue
        if value.mean(0)[best] > best_value * (1 + 1e-9) + 1e-12:
            binds.append(name)
    return binds


def optimize_group(demand, contexts: list, *, current_prices: list, costs: list, constraints=Constraints(),
                   objective="profit", grid_step=0.01) -> dict:
    """One shared price for items that must move together (same shelf price, shared ladder):
    maximizes the summed objective over the prices feasible for EVERY item of the group."""
    sets = [set(candidate_prices(current_price=cp, cost=c, constraints=constraints, grid_step=grid_step).tolist())
            for cp, c in zip(current_prices, costs)]
    common = sorted(set.intersection(*sets))
    if not common:
        raise InfeasibleError(f"no single price is feasible for all {len(contexts)} items of the group")
    prices = np.array(common)
    units = [np.asarray(demand.curve(ctx, prices), dtype=float) for ctx in contexts]
    value = sum(_objective(prices, u, c, objective) for u, c in zip(units, costs))
    best = int(np.argmax(value.mean(0)))
    per_item = [{"price": float(prices[best]), "units": float(u[:, best].mean())} for u in units]
    total = _band(value[:, best])
    return {"price": float(prices[best]), "value": total[0], "value_low": total[1], "value_high": total[2],
            "items": per_item, "curve": {"prices": prices, "value": value.mean(0)}}
