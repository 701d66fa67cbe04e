"""BG/NBD ("beta-geometric / negative binomial") repeat-purchase model, fitted by maximum likelihood.

Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing Science 24(2).
While alive a customer buys as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``; after
each purchase she drops out with probability ``p ~ Beta(a, b)``. Data per customer are the RFM
summary ``x`` (repeat purchases), ``t_x`` (time of the last purchase) and ``T`` (age), all in weeks
from her first purchase.

Also here: the RFM conventions (:func:`rfm_summary`) and a simulator of the BG/NBD process
itself (for tests). The CDNOW files are read by :func:`shopml.data.public.read_cdnow`; turn
them into ``(ids, day, ...)`` with :func:`shopml.customers.estimator.transactions_to_days`.

Example:
    >>> import numpy as np
    >>> x, tx, T = simulate_bgnbd(2000, r=0.5, alpha=4.0, a=0.8, b=2.5, T=39.0, seed=0)
    >>> m = BGNBD().fit(x, tx, T)
    >>> round(m.params_["r"], 1)
    0.5
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, hyp2f1

from shopml.errors import DataError
from shopml.estimator import Estimator

__all__ = ["BGNBD", "rfm_summary", "simulate_bgnbd", "sample_conditional"]


def _log_likelihood(log_params: np.ndarray, x, tx, T, w) -> float:
    """Total BG/NBD log-likelihood, eq. (6) of FHL 2005, evaluated in log space.

    ``w`` weights identical (x, t_x, T) rows so the sum runs over unique rows only.
    """
    r, alpha, a, b = np.exp(log_params)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    # The second term only exists for x > 0 (dropout after the last purchase).
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + tx),
            -np.inf,
        )
    ll = a1 + a2 + np.logaddexp(a3, a4)
    return float(np.sum(w * ll))


def _as_rfm(x, tx, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, tx, T = (np.asarray(v, dtype=np.float64).ravel() for v in (x, tx, T))
    if not (len(x) == len(tx) == len(T)) or len(x) == 0:
        raise DataError("x, t_x and T must be non-empty arrays of equal length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(tx)) and np.all(np.isfinite(T))):
        raise DataError("x, t_x and T must be finite")
    if np.any(x < 0) or np.any(tx < 0) or np.any(tx > T + 1e-9):
        raise DataError("RFM summary needs x >= 0 and 0 <= t_x <= T")
    return x, tx, T


class BGNBD(Estimator):
    """BG/NBD model fitted by maximum likelihood (L-BFGS-B on log parameters).

    Args:
        penalizer: optional L2 penalty on the parameters (0 = plain MLE, as in the paper).

    Learned: ``params_`` (dict r, alpha, a, b), ``log_likelihood_``, ``n_customers_``.

    Example:
        >>> m = BGNBD().fit([2, 1, 0], [30.43, 1.71, 0.0], [38.86, 38.86, 38.86])
        >>> m.conditional_expected_purchases(39.0, [0], [0.0], [38.86]).shape
        (1,)
    """

    kind = "customers.bgnbd"

    def __init__(self, *, penalizer: float = 0.0):
        self.penalizer = penalizer

    def fit(self, x, tx, T) -> "BGNBD":
        """Fit on per-customer RFM arrays (weeks). Returns self."""
        x, tx, T = _as_rfm(x, tx, T)
        # Unique rows with counts: the likelihood only depends on (x, t_x, T).
        rows, w = np.unique(np.stack([x, tx, T], 1), axis=0, return_counts=True)
        ux, utx, uT = rows.T

        def nll(lp):
            pen = self.penalizer * float(np.sum(np.exp(lp) ** 2))
            return -_log_likelihood(lp, ux, utx, uT, w) / len(x) + pen

        best = None
        for start in ([0.0, 0.0, 0.0, 0.0], [np.log(0.25), np.log(4.0), np.log(0.8), np.log(2.5)]):
            res = minimize(nll, np.array(start), method="L-BFGS-B", bounds=[(-12, 8)] * 4,
                           options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-10})
            if best is None or res.fun < best.fun:
                best = res
        r, alpha, a, b = np.exp(best.x)
        self.params_ = {"r": float(r), "alpha": float(alpha), "a": float(a), "b": float(b)}
        self.log_likelihood_ = _log_likelihood(best.x, ux, utx, uT, w)
        self.n_customers_ = int(len(x))
        return self

    def _artifact(self):
        return {}, {}, {"params": self.params_, "log_likelihood": self.log_likelihood_, "n_customers": self.n_customers_}

    def _from_artifact(self, md) -> None:
        self.params_, self.log_likelihood_ = md.meta["params"], md.meta["log_likelihood"]
        self.n_customers_ = md.meta["n_customers"]

    def _check(self) -> tuple[float, float, float, float]:
        self._check_fitted()
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def expected_purchases(self, t) -> np.ndarray:
        """Unconditional E[X(t)]: expected repeat purchases of a new customer within t weeks (eq. 9).

        This is the population prior for customers with no history.
        """
        r, alpha, a, b = self._check()
        t = np.asarray(t, dtype=np.float64)
        z = t / (alpha + t)
        val = (a + b - 1) / (a - 1) * (1 - np.exp(r * np.log(alpha / (alpha + t))) * hyp2f1(r, b, a + b - 1, z))
        return np.where(t > 0, val, 0.0)

    def _log_alive_odds(self, x, tx, T) -> np.ndarray:
        """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x) for x > 0; -inf for x == 0."""
        r, alpha, a, b = self._check()
        with np.errstate(divide="ignore", invalid="ignore"):
            lo = np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return np.where(x > 0, lo, -np.inf)

    def probability_alive(self, x, tx, T) -> np.ndarray:
        """P(alive | x, t_x, T), eq. (11) of FHL 2005."""
        x, tx, T = _as_rfm(x, tx, T)
        return 1.0 / (1.0 + np.exp(self._log_alive_odds(x, tx, T)))

    def conditional_expected_purchases(self, t, x, tx, T) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` weeks after T (eq. 10).

        ``t`` is a scalar or an array broadcastable against the customers.
        """
        r, alpha, a, b = self._check()
        x, tx, T = _as_rfm(x, tx, T)
        t = np.asarray(t, dtype=np.float64)
        z = t / (alpha + T + t)
        ratio = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
        num = (a + b + x - 1) / (a - 1) * (1 - ratio * hyp2f1(r + x, b + x, a + b + x - 1, z))
        return num * self.probability_alive(x, tx, T)

    def log_likelihood(self, x, tx, T) -> float:
        """Total log-likelihood of RFM data under the fitted parameters."""
        r, alpha, a, b = self._check()
        x, tx, T = _as_rfm(x, tx, T)
        return _log_likelihood(np.log([r, alpha, a, b]), x, tx, T, np.ones_like(x))


def rfm_summary(ids, day, calibration_end: int, holdout_end: int | None = None) -> dict[str, np.ndarray]:
    """Per-customer RFM in weeks, with the conventions of FHL 2005.

    - Several transactions on one day count as one purchase.
    - ``x`` counts *repeat* purchases: the first purchase is excluded.
    - ``t_x`` and ``T`` are measured from the first purchase, in weeks (days / 7), up to the
      day ``calibration_end`` (inclusive day index; 272 = 1997-09-30 for CDNOW).
    - Customers whose first purchase is after ``calibration_end`` are dropped here.
    - With ``holdout_end``, ``x_holdout`` counts purchase days in (calibration_end, holdout_end].

    Returns a dict of arrays ``customer``, ``x``, ``tx``, ``T``, ``first_day`` (and ``x_holdout``).

    Example:
        >>> s = rfm_summary(np.array(["a", "a", "a"]), np.array([0, 0, 14]), calibration_end=28)
        >>> s["x"].tolist(), s["tx"].tolist(), s["T"].tolist()
        ([1.0], [2.0], [4.0])
    """
    ids, day = np.asarray(ids), np.asarray(day, dtype=np.int64)
    cust, inv = np.unique(ids, return_inverse=True)
    pairs = np.unique(np.stack([inv, day], 1), axis=0)  # one row per customer-day
    c, d = pairs[:, 0], pairs[:, 1]
    n = len(cust)
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, c, d)
    cal = d <= calibration_end
    x = np.bincount(c[cal], minlength=n).astype(np.float64) - 1
    last = np.full(n, -1)
    np.maximum.at(last, c[cal], d[cal])
    keep = first <= calibration_end
    out = {
        "customer": cust[keep],
        "x": x[keep],
        "tx": (last[keep] - first[keep]) / 7.0,
        "T": (calibration_end - first[keep]) / 7.0,
        "first_day": first[keep],
    }
    if holdout_end is not None:
        hold = (d > calibration_end) & (d <= holdout_end)
        out["x_holdout"] = np.bincount(c[hold], minlength=n).astype(np.float64)[keep]
    return out


def simulate_bgnbd(n: int, *, r: float, alpha: float, a: float, b: float, T, seed: int = 0):
    """Simulate RFM data ``(x, t_x, T)`` from the BG/NBD process itself (vectorized over customers).

    Example:
        >>> x, tx, T = simulate_bgnbd(5, r=1.0, alpha=2.0, a=1.0, b=3.0, T=10.0, seed=1)
        >>> bool(np.all(tx <= T))
        True
    """
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    x, tx, now = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        now[active] += rng.exponential(1.0, active.sum()) / np.maximum(lam[active], 1e-12)
        bought = active & (now <= T)
        x[bought] += 1
        tx[bought] = now[bought]
        # Drop out after a purchase with probability p; stop once past T.
        active = bought & (rng.random(n) >= p)
    return x, tx, T


def sample_conditional(model: BGNBD, t: float, x, tx, T, n_samples: int = 200, seed: int = 0) -> np.ndarray:
    """Sample purchases in the next ``t`` weeks from the BG/NBD posterior, shape [N, n_samples].

    Alive with P(alive); then ``lambda ~ Gamma(r + x, alpha + T)`` and ``p ~ Beta(a, b + x)``
    (the posterior given survival to T), and the process runs forward for ``t`` weeks. Gives the
    predictive median, which is the point forecast that minimizes absolute error.

    Example:
        >>> m = BGNBD(); m.params_ = {"r": 0.25, "alpha": 4.4, "a": 0.79, "b": 2.4}
        >>> sample_conditional(m, 39.0, [0, 3], [0.0, 30.0], [39.0, 39.0], n_samples=4).shape
        (2, 4)
    """
    r, alpha, a, b = model._check()
    x, tx, T = _as_rfm(x, tx, T)
    rng = np.random.default_rng(seed)
    n = len(x)
    alive = rng.random((n, n_samples)) < model.probability_alive(x, tx, T)[:, None]
    lam = rng.gamma(np.repeat(r + x, n_samples), 1.0 / np.repeat(alpha + T, n_samples))
    p = rng.beta(a, np.repeat(b + x, n_samples))
    count, now = np.zeros(n * n_samples), np.zeros(n * n_samples)
    active = alive.ravel().copy()
    while active.any():
        now[active] += rng.exponential(1.0, active.sum()) / np.maximum(lam[active], 1e-12)
        bought = active & (now <= t)
        count[bought] += 1
        active = bought & (rng.random(n * n_samples) >= p)
    return count.reshape(n, n_samples)
