"""Which demand model prices which item: the price book's per-item choice.

The neural demand learns shapes a constant elasticity cannot; a log-linear demand whose
elasticity is confounding-adjusted (DML with the panel's controls, IV with an instrument)
extrapolates more safely for an item with few price changes. :func:`choose_per_item` keeps,
for every item, the candidate with the lowest absolute error on that item's *validation*
weeks; an item with no validation weeks gets the candidate with the lowest pooled WAPE.

Example:
    >>> import polars as pl
    >>> class Const:
    ...     def __init__(self, v): self.v = v
    ...     def predict(self, d): return [self.v] * d.height
    >>> valid = pl.DataFrame({"item": ["a", "a", "b"], "units": [1.0, 1.0, 5.0]})
    >>> choice, default, _ = choose_per_item({"neural": Const(1.0), "loglinear-dml": Const(5.0)}, valid)
    >>> choice, default
    ({'a': 'neural', 'b': 'loglinear-dml'}, 'neural')
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["choose_per_item", "loglinear_candidates"]


def loglinear_candidates(train: pl.DataFrame, estimates: dict) -> dict:
    """``{"loglinear-<method>": LogLinearDemand}`` with per-item intercepts fitted on ``train``,
    one per elasticity estimate (``{method: ElasticityResult}``)."""
    from shopml.pricing.loglinear import LogLinearDemand

    return {f"loglinear-{m}": LogLinearDemand(elasticity=r.estimate, se=r.se).fit(train) for m, r in estimates.items()}


def choose_per_item(candidates: dict, valid: pl.DataFrame, item: str = "item", y: str = "units"):
    """``(item -> candidate name, default name, rows)``: rows give each candidate's pooled
    WAPE on ``valid`` and the number of items it won. Ties go to the earlier candidate."""
    names = list(candidates)
    actual = valid[y].cast(pl.Float64).to_numpy()
    err = np.stack([np.abs(actual - np.asarray(candidates[n].predict(valid), dtype=float)) for n in names])
    items = valid[item].cast(pl.Utf8).to_numpy()
    keys, inv = np.unique(items, return_inverse=True)
    per_item = np.stack([np.bincount(inv, weights=e, minlength=len(keys)) for e in err])  # [models, items]
    best = per_item.argmin(0)
    wape = err.sum(1) / max(float(np.abs(actual).sum()), 1e-12)
    default = names[int(wape.argmin())]
    rows = [{"model": n, "wape": float(wape[j]), "items_chosen": int((best == j).sum())} for j, n in enumerate(names)]
    return {str(k): names[int(b)] for k, b in zip(keys, best)}, default, rows
