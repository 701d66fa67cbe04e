"""Constrained price optimization: the best allowed price, exact at any bounds.

The allowed prices are every cent (``grid_step``), or the ``endings``, or the ``ladder``,
within the bounds that the other constraints set. :func:`candidate_prices` lists them;
:func:`optimize_price` finds the best of them without listing them (see
:mod:`shopml.pricing._search`: a log-spaced bracketing of every local optimum, zooms, then
every allowed price next to the few optima and the bounds), so a request costs about the same
whether its range is [1, 2] or [0.01, 1e9]. Each final candidate passes :func:`violations`,
the same predicate used to audit results, so a proposed price never violates a constraint.
The objective (revenue or profit) is evaluated with the demand model's ensemble members,
which gives the curves and the intervals. A request with no feasible price raises
:class:`~shopml.errors.InfeasibleError` naming the conflicting bounds. A constraint *binds*
when dropping it (alone) would move the optimum to a strictly better price.

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
from shopml.pricing._search import Endings, Grid, Ladder, extreme, run, search

__all__ = ["Constraints", "candidate_prices", "optimize_group", "optimize_price", "violations"]

_NO_CAP = 3.0  # no upper bound: search up to 3x the reference price (+1, so any ending fits)
_FLOOR = 0.01  # no lower bound: one cent
_MAX_PRICE = 1e9  # the service's limit too: near 1e10 a double's error reaches violations' 1e-6 on cents
_MAX_LIST = 100_000  # candidate_prices refuses to list more (optimize_price never lists them)


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
    lo, hi, why = _FLOOR, math.inf, []
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
    if not math.isfinite(hi) and c.ladder is None:  # a ladder is its own cap
        hi = max(lo, current_price or cost or lo) * _NO_CAP + 1.0
    return lo, hi, why


def _ticks(c: Constraints, grid_step: float):
    """The allowed price set before bounds. A ladder keeps only its points with an allowed
    ending, so the remaining constraints are intervals in price."""
    if c.endings is not None and not all(0 <= e < 1 for e in c.endings):
        raise ConfigError(f"endings must be cents in [0, 1), got {tuple(c.endings)}")
    if c.ladder is not None:
        return Ladder([p for p in c.ladder if not violations(p, current_price=None, cost=None,
                                                               constraints=Constraints(endings=c.endings))])
    if c.endings is not None:
        return Endings(c.endings)
    if not grid_step > 0:
        raise ConfigError(f"grid_step must be positive, got {grid_step}")
    return Grid(grid_step)


def _range(units: list, c: Constraints, grid_step: float):
    """(ticks, lowest, highest feasible allowed price, ok) for every (current, cost) in ``units``."""
    bounds = [_bounds(cp, cost, c) for cp, cost in units]
    lo, hi = max(b[0] for b in bounds), min(b[1] for b in bounds)
    if hi > _MAX_PRICE and c.ladder is None:
        raise ConfigError(f"the allowed range reaches {hi:.3g}: prices above {_MAX_PRICE:g} are not supported "
                          "(set max_price or max_change)")
    ticks = _ticks(c, grid_step)
    ok = lambda p: all(not violations(p, current_price=cp, cost=cost, constraints=c)
                       for cp, cost in units)
    low = extreme(ticks, lo, hi, ok, side="low") if lo <= hi else None
    high = extreme(ticks, lo, hi, ok, side="high") if low is not None else None
    if low is None or high is None or low > high:
        if len(units) > 1:
            raise InfeasibleError(f"no single price is feasible for all {len(units)} items of the group")
        detail = "; ".join(bounds[0][2]) or "no bounds"
        extra = f", endings {c.endings}" if c.endings else ""
        extra += f", ladder of {len(c.ladder)} prices" if c.ladder else ""
        raise InfeasibleError(f"no price satisfies the constraints: allowed range [{lo:.4g}, {hi:.4g}] from "
                              f"{detail}{extra}")
    return ticks, low, high, ok


def candidate_prices(*, current_price=None, cost=None, constraints=Constraints(), grid_step=0.01,
                     limit=_MAX_LIST) -> np.ndarray:
    """Every feasible allowed price (sorted): the set :func:`optimize_price` maximizes over.
    Raises InfeasibleError when there is none, ConfigError when there are more than ``limit``.

    Example:
        >>> candidate_prices(current_price=2.0, constraints=Constraints(max_change=0.3, endings=(0.99,))).tolist()
        [1.99]
    """
    ticks, low, high, ok = _range([(current_price, cost)], constraints, grid_step)
    if ticks.count(low, high) > limit:
        raise ConfigError(f"{ticks.count(low, high):.3g} allowed prices in [{low:g}, {high:g}]: more than "
                          f"limit={limit}; optimize_price searches them without listing")
    span = ticks.span(low, high)
    return np.array([p for p in span[(span >= low) & (span <= high)] if ok(float(p))], dtype=float)


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


class _Scored:
    """The objective of a set of demand curves (``parts``: (curve function, cost) per item;
    values add up) for several searches at once: one demand-model call per step. The
    evaluations of search 0 (the request's own constraints) are kept for the answer's curves."""

    def __init__(self, parts, objective, extra=None):
        self.parts, self.objective, self.seen = parts, objective, []
        self.extra_prices, self.extra = (np.zeros(0) if extra is None else extra), None

    def __call__(self, asks: list) -> list:
        prices = np.concatenate([p for _, p in asks])
        n, ride = len(prices), self.extra is None  # extra prices ride along on the first call
        # searches of one batch often ask the same prices: the model sees each once
        wanted, back = np.unique(np.concatenate([prices, self.extra_prices]) if ride else prices, return_inverse=True)
        units = [np.asarray(fn(wanted), dtype=float)[:, back] for fn, _ in self.parts]
        if ride:
            self.extra, units = [u[:, n:] for u in units], [u[:, :n] for u in units]
        value = sum(_objective(prices, u, cost, self.objective) for u, (_, cost) in zip(units, self.parts))
        n0 = len(asks[0][1]) if asks[0][0] == 0 else 0
        self.seen.append((prices[:n0], [u[:, :n0] for u in units], value[:, :n0]))
        return np.split(value.mean(0), np.cumsum([len(p) for _, p in asks])[:-1])

    def table(self):
        """Every price search 0 evaluated, once (sorted), its units per item and its objective."""
        prices = np.concatenate([s[0] for s in self.seen])
        keep = np.unique(prices, return_index=True)[1]
        units = [np.concatenate([s[1][k] for s in self.seen], axis=1)[:, keep] for k in range(len(self.parts))]
        return prices[keep], units, np.concatenate([s[2] for s in self.seen], axis=1)[:, keep]


def _relaxations(units, constraints, grid_step) -> tuple[list[str], list]:
    """(name, search) for each active constraint that can be dropped alone to a feasible set."""
    names, searches = [], []
    for name in constraints.active():
        if name == "max_change" and units[0][0] is None:
            continue
        try:
            ticks, low, high, ok = _range(units, replace(constraints, **{name: None}), grid_step)
        except InfeasibleError:
            continue
        names.append(name)
        searches.append(search(ticks, low, high, ok))
    return names, searches


def _solve(parts, units, constraints, objective, grid_step, explain=False, extra=None):
    """(best price, the evaluations, binding names) under ``constraints``. ``explain``: also
    solve with each constraint dropped alone, in the same model calls; a constraint binds
    when dropping it gives a strictly better objective. ``extra``: prices whose units are
    wanted too (``scored.extra`` afterwards)."""
    _objective(np.ones(1), np.ones((1, 1)), units[0][1], objective)  # fail fast on objective/cost
    ticks, low, high, ok = _range(units, constraints, grid_step)
    names, relaxed = _relaxations(units, constraints, grid_step) if explain else ([], [])
    scored = _Scored(parts, objective, extra)
    (price, value), *alt = run(scored, [search(ticks, low, high, ok)] + relaxed)
    binds = [n for n, (_, v) in zip(names, alt) if v > value * (1 + 1e-9) + 1e-12]
    return price, scored, binds


def optimize_price(demand, context, *, current_price=None, cost=None, constraints=Constraints(),
                   objective="profit", grid_step=0.01, explain=True) -> dict:
    """Best feasible price for one item (or item x store) whose context rows are ``context``.

    Returns plain numbers and arrays: ``price``, ``units``/``revenue``/``profit`` with
    ``_low``/``_high`` (5-95% across the demand ensemble), the model's values at
    ``current_price``, ``binding`` constraint names and ``curve`` (every price evaluated: units,
    revenue, profit and bands) for plots. ``explain=False`` skips the binding analysis (faster).
    """
    fn = lambda p: demand.curve(context, p)
    return _decide(fn, current_price, cost, constraints, objective, grid_step, explain)


def _decide(fn, current_price, cost, constraints, objective, grid_step, explain=True) -> dict:
    now = None if current_price is None else np.array([float(current_price)])
    p, scored, binds = _solve([(fn, cost)], [(current_price, cost)], constraints, objective, grid_step, explain, now)
    prices, (units,), _ = scored.table()
    best = int(np.flatnonzero(prices == p)[0])
    revenue = prices[None, :] * units
    profit = (prices[None, :] - cost) * units if cost is not None else None
    out = {"price": p, "current_price": current_price, "cost": cost, "objective": objective}
    for name, arr in [("units", units), ("revenue", revenue), ("profit", profit)]:
        if arr is not None:
            out[name], out[f"{name}_low"], out[f"{name}_high"] = _band(arr[:, best])
    if current_price is not None:
        units_now = scored.extra[0]
        out["current_units"] = float(units_now.mean())
        out["current_value"] = float(_objective(now, units_now, cost, objective).mean())
    if explain:
        out["binding"] = binds
    out["curve"] = {"prices": prices, "units": units.mean(0), "units_low": np.quantile(units, 0.05, 0),
                    "units_high": np.quantile(units, 0.95, 0), "revenue": revenue.mean(0)}
    if profit is not None:
        out["curve"].update(profit=profit.mean(0), profit_low=np.quantile(profit, 0.05, 0),
                            profit_high=np.quantile(profit, 0.95, 0))
    return out


def optimize_group(demand, contexts: list, *, current_prices: list, costs: list, constraints=Constraints(),
                   objective="profit", grid_step=0.01) -> dict:
    """One shared price for items that must move together (same shelf price, shared ladder):
    maximizes the summed objective over the prices feasible for EVERY item of the group.

    Example:
        >>> class Iso:
        ...     def curve(self, context, prices): return 100 * np.asarray(prices)[None, :] ** -3.0
        >>> optimize_group(Iso(), [None, None], current_prices=[1.4, 1.6], costs=[1.0, 1.0],
        ...                constraints=Constraints(max_change=0.2))["price"]
        1.5
    """
    parts = [((lambda p, ctx=ctx: demand.curve(ctx, p)), c) for ctx, c in zip(contexts, costs)]
    price, scored, _ = _solve(parts, list(zip(current_prices, costs)), constraints, objective, grid_step)
    prices, units, value = scored.table()
    best = int(np.flatnonzero(prices == price)[0])
    total = _band(value[:, best])
    per_item = [{"price": price, "units": float(u[:, best].mean())} for u in units]
    return {"price": price, "value": total[0], "value_low": total[1], "value_high": total[2],
            "items": per_item, "curve": {"prices": prices, "value": value.mean(0)}}
