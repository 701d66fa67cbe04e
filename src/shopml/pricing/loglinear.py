"""Constant-elasticity demand built from an elasticity estimate (naive, DML or IV).

``log q = alpha_key + beta * log p``: ``beta`` comes from :func:`estimate_elasticity`, and each
key (item, item x store...) gets the intercept that fits its mean log units given beta.
The ensemble members are deterministic quantile draws of beta from N(estimate, se), so
the optimizer's intervals reflect the estimate's uncertainty.

Example:
    >>> import numpy as np, polars as pl
    >>> d = pl.DataFrame({"item": [0, 0], "price": [1.0, 2.0], "log_units": [3.0, 3 - 2 * np.log(2)]})
    >>> m = LogLinearDemand(elasticity=-2.0, se=0.0, keys=["item"]).fit(d)
    >>> round(float(m.curve(d[:1], [1.0]).mean()), 3) == round(float(np.exp(3.0)), 3)
    True
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import norm

from shopml.estimator import Estimator

__all__ = ["LogLinearDemand"]


class LogLinearDemand(Estimator):
    """Demand model with one (pooled or per-key) elasticity; ``curve`` as NeuralDemand's."""

    kind = "pricing.loglinear_demand"

    def __init__(self, *, elasticity: float, se: float = 0.0, keys=("item",), price="price", y="log_units",
                 n_members: int = 21):
        self.elasticity, self.se, self.keys, self.price, self.y, self.n_members = elasticity, se, keys, price, y, n_members

    def fit(self, data: pl.DataFrame) -> "LogLinearDemand":
        """Per-key intercepts (and the residual variance for the lognormal mean)."""
        alpha = data[self.y].cast(pl.Float64) - self.elasticity * data[self.price].cast(pl.Float64).log()
        frame = data.select(list(self.keys)).with_columns(alpha.alias("_a"))
        table = frame.group_by(list(self.keys)).agg(pl.col("_a").mean().alias("_mean"))
        resid = frame.join(table, on=list(self.keys), how="left")
        self.sigma2_ = float(((resid["_a"] - resid["_mean"]) ** 2).mean())
        self.intercepts_ = {tuple(str(v) for v in r[:-1]): r[-1] for r in table.iter_rows()}
        self.default_intercept_ = float(frame["_a"].mean())
        q = (np.arange(self.n_members) + 0.5) / self.n_members
        self.betas_ = self.elasticity + self.se * norm.ppf(q) if self.se > 0 else np.full(1, self.elasticity)
        return self

    def predict(self, data: pl.DataFrame, price=None) -> np.ndarray:
        """Expected units per row at the row's price (or ``price``), like NeuralDemand's."""
        self._check_fitted()
        keys = zip(*(data[k].cast(pl.Utf8).to_list() for k in self.keys))
        a = np.array([self.intercepts_.get(tuple(k), self.default_intercept_) for k in keys], dtype=float)
        p = data[self.price].cast(pl.Float64).to_numpy() if price is None else np.broadcast_to(price, a.shape)
        return np.exp(a + float(np.mean(self.betas_)) * np.log(p) + 0.5 * self.sigma2_)

    def curve(self, context: pl.DataFrame, prices) -> np.ndarray:
        """Units [n_members, n_prices] for the key of ``context``'s first row."""
        self._check_fitted()
        key = tuple(str(context[k][0]) for k in self.keys)
        a = self.intercepts_.get(key, self.default_intercept_)
        lp = np.log(np.asarray(prices, dtype=float))
        return np.exp(a + self.betas_[:, None] * lp[None, :] + 0.5 * self.sigma2_)

    def _artifact(self):
        params = {"keys": list(self.keys)}
        meta = {"intercepts": [[list(k), v] for k, v in self.intercepts_.items()], "sigma2": self.sigma2_,
                "default_intercept": self.default_intercept_}
        return params, {"betas": np.asarray(self.betas_, dtype=np.float64)}, meta

    def _from_artifact(self, md) -> None:
        self.intercepts_ = {tuple(k): v for k, v in md.meta["intercepts"]}
        self.sigma2_, self.default_intercept_ = md.meta["sigma2"], md.meta["default_intercept"]
        self.betas_ = np.asarray(md.tensors["betas"])
