"""Allowed price sets and an exact maximizer over them whose cost does not grow with the bounds.

A price must lie on one discrete set: a tick grid (every multiple of ``step``, e.g. every
cent), endings (``n + e`` for whole ``n``, e.g. x.99 and x.49) or a ladder (listed prices).
Listing the set over the allowed range would cost as much as the range is wide (1e9 with
cents is 1e11 prices), so :func:`maximize` never does: it brackets every local optimum on a
log-spaced grid of allowed prices, narrows each of the best few brackets by log-spaced zooms
until it holds at most ``_EXACT`` allowed prices, and then evaluates all of them plus the
nearest allowed price on each side and the two bounds. For an objective that is unimodal
within each bracket this returns the best allowed price exactly: the discrete optimum is one
of the allowed prices next to the continuous optimum, and those are always evaluated.

Example:
    >>> import numpy as np
    >>> profit = lambda p: (p - 1.0) * p ** -3.0      # best continuous price 1.5
    >>> float(maximize(profit, Grid(0.01), 0.01, 1e9))
    1.5
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Endings", "Grid", "Ladder", "extreme", "maximize", "run", "search"]

# Sizes trade demand-model work (~0.15 ms per price for 80 context rows x 3 members) against
# calls (~4 ms each): a search evaluates ~100-300 prices in 3-8 calls.
_EXACT = 16  # a bracket with at most this many allowed prices is evaluated in full
_GRID = 64  # log-spaced points over the whole range; brackets each local optimum
_ZOOM = 16  # log-spaced points per bracket per round: a round narrows a bracket ~7x
_PEAKS = 3  # local optima of the coarse grid that are refined (ties between peaks)
_ROUNDS = 40  # safety cap: a 1e11 price ratio needs about 6 rounds
_DIGITS = 6  # prices are rounded so that 2 + 0.49 prints and compares as 2.49


def _trim(prices: np.ndarray, a: float, b: float) -> np.ndarray:
    """Sorted ``prices`` from the largest one <= a to the smallest one >= b."""
    i0 = max(int(np.searchsorted(prices, a, "right")) - 1, 0)
    i1 = min(int(np.searchsorted(prices, b, "left")), len(prices) - 1)
    return prices[i0:i1 + 1]


class Grid:
    """Every positive multiple of ``step``."""

    def __init__(self, step: float):
        self.step = step

    def count(self, a: float, b: float) -> float:
        return (b - a) / self.step + 1

    def span(self, a: float, b: float) -> np.ndarray:
        """Allowed prices in [a, b] plus the nearest one on each side (call on narrow ranges)."""
        k = np.arange(max(math.floor(a / self.step) - 1, 1), math.ceil(b / self.step) + 2)
        return _trim(np.round(k * self.step, _DIGITS), a, b)

    def nearest(self, x: np.ndarray) -> np.ndarray:
        return np.round(np.maximum(np.round(x / self.step), 1) * self.step, _DIGITS)


class Endings:
    """``n + e`` for whole ``n >= 0`` and each ending ``e`` in [0, 1) (positive prices only)."""

    def __init__(self, endings):
        self.e = np.unique(np.asarray(endings, dtype=float))

    def count(self, a: float, b: float) -> float:
        return (b - a + 1) * len(self.e)

    def _around(self, lo_whole: float, hi_whole: float) -> np.ndarray:
        n = np.arange(max(lo_whole, 0), hi_whole + 1, dtype=float)
        p = np.round((n[:, None] + self.e[None, :]).ravel(), _DIGITS)
        return np.sort(p[p > 0])

    def span(self, a: float, b: float) -> np.ndarray:
        return _trim(self._around(math.floor(a) - 1, math.floor(b) + 1), a, b)

    def nearest(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        cand = np.floor(x)[:, None, None] + np.array([-1.0, 0.0, 1.0])[None, :, None] + self.e[None, None, :]
        cand = np.where(cand > 0, cand, np.inf).reshape(len(x), -1)
        return np.round(cand[np.arange(len(x)), np.argmin(np.abs(cand - x[:, None]), 1)], _DIGITS)


class Ladder:
    """A listed set of prices (e.g. a group's shared price ladder)."""

    def __init__(self, prices):
        p = np.unique(np.asarray(prices, dtype=float))
        self.p = p[p > 0]

    def count(self, a: float, b: float) -> float:
        return float(np.searchsorted(self.p, b, "right") - np.searchsorted(self.p, a, "left"))

    def span(self, a: float, b: float) -> np.ndarray:
        return _trim(self.p, a, b) if len(self.p) else self.p

    def nearest(self, x: np.ndarray) -> np.ndarray:
        if len(self.p) == 1:
            return np.full(len(x), self.p[0])
        i = np.clip(np.searchsorted(self.p, x), 1, len(self.p) - 1)
        lower, upper = self.p[i - 1], self.p[i]
        return np.where(np.abs(x - lower) <= np.abs(upper - x), lower, upper)


def extreme(ticks, lo: float, hi: float, ok, *, side: str) -> float | None:
    """The smallest (``side="low"``) or largest allowed price in [lo, hi] that passes ``ok``.

    Only the price nearest the bound and its next few neighbours are tried: the constraints
    are intervals in price, so a neighbour fails only through rounding at the bound itself."""
    x, sign = (lo, 1.0) if side == "low" else (hi, -1.0)
    for _ in range(4):
        near = ticks.span(x, x)
        near = near[near >= x] if sign > 0 else near[near <= x]
        if not len(near):
            return None
        p = float(near[0] if sign > 0 else near[-1])
        if not lo * (1 - 1e-12) <= p <= hi * (1 + 1e-12):
            return None
        if ok(p):
            return p
        x = p + sign * (abs(p) * 1e-12 + 1e-12)
    return None


def _within(prices, lo: float, hi: float) -> np.ndarray:
    prices = np.unique(np.concatenate([[lo, hi], prices]))
    return prices[(prices >= lo) & (prices <= hi)]


def _peaks(values: np.ndarray) -> np.ndarray:
    """Indices of the best ``_PEAKS`` local maxima (plateaus count; ends compare one side)."""
    left = np.concatenate([[True], values[1:] >= values[:-1]])
    right = np.concatenate([values[:-1] >= values[1:], [True]])
    idx = np.flatnonzero(left & right)
    return idx[np.argsort(-values[idx], kind="stable")[:_PEAKS]]


def _bracket(prices: np.ndarray, i: int) -> tuple[float, float]:
    return float(prices[max(i - 1, 0)]), float(prices[min(i + 1, len(prices) - 1)])


def search(ticks, lo: float, hi: float, ok=lambda p: True):
    """The search as a generator: yields arrays of prices, is sent their scores, and returns
    (best allowed price in [lo, hi], its score); lo and hi must be allowed and feasible. A few
    steps of at most ~50 prices whatever the width of [lo, hi]; ``ok(price)`` re-checks the final candidates
    (rounding at the bounds). A generator, so that :func:`run` can batch several searches
    (the binding analysis) into one demand-model call per step."""
    if ticks.count(lo, hi) <= _EXACT:
        final = _within(ticks.span(lo, hi), lo, hi)
    else:
        grid = _within(ticks.nearest(np.geomspace(lo, hi, _GRID)), lo, hi)
        values = yield grid
        brackets = [_bracket(grid, int(i)) for i in _peaks(values)]
        for _ in range(_ROUNDS):
            wide = [k for k, (a, b) in enumerate(brackets) if ticks.count(a, b) > _EXACT]
            if not wide:
                break
            grids = [_within(ticks.nearest(np.geomspace(*brackets[k], _ZOOM)), *brackets[k]) for k in wide]
            values = yield np.concatenate(grids)
            for k, g, v in zip(wide, grids, np.split(values, np.cumsum([len(g) for g in grids])[:-1])):
                brackets[k] = _bracket(g, int(np.argmax(v)))
        final = _within(np.concatenate([ticks.span(a, b) for a, b in brackets]), lo, hi)
    final = np.array([p for p in final if ok(float(p))])
    values = yield final
    best = int(np.argmax(values))
    return float(final[best]), float(values[best])


def run(score, searches: list) -> list[tuple[float, float]]:
    """Drive ``searches`` in lockstep: one ``score([(k, prices), ...]) -> [values, ...]`` call
    per step for all of them (``k``: the search's index in ``searches``)."""
    out, asks = [None] * len(searches), {k: next(g) for k, g in enumerate(searches)}
    while asks:
        values = score(list(asks.items()))
        for (k, _), v in zip(list(asks.items()), values):
            try:
                asks[k] = searches[k].send(v)
            except StopIteration as done:
                out[k] = done.value
                del asks[k]
    return out


def maximize(score, ticks, lo: float, hi: float, ok=lambda p: True) -> float:
    """The allowed price in [lo, hi] (both allowed and feasible) with the highest
    ``score(prices) -> values``."""
    return run(lambda asks: [score(p) for _, p in asks], [search(ticks, lo, hi, ok)])[0][0]
