"""Own-price elasticity d log q / d log p: naive log-log OLS, double ML, and IV (2SLS).

* ``naive``: OLS of log q on log p with optional fixed effects (absorbed by demeaning,
  Frisch-Waugh) and numeric controls; classical (glm) standard errors, so pooled and
  per-segment slopes match R's ``glm(log(sales) ~ log(price)*brand)``.
* ``dml``: partialling-out double/debiased ML (Chernozhukov et al. 2018): cross-fitted
  flexible first stages E[log q | X] and E[log p | X] (LightGBM), then the slope of the
  outcome residual on the price residual, with the sandwich (heteroskedasticity-robust)
  standard error of the orthogonal score.
* ``iv``: two-stage least squares with one instrument column; fixed effects and linear
  controls are partialled out first (``flexible=True`` partials them out with cross-fitted
  LightGBM instead: DML-IV).

Example:
    >>> from shopml.data.market import simulate_market
    >>> m = simulate_market(n_items=10, n_stores=10, n_weeks=30, seed=0)
    >>> r = estimate_elasticity(m.panel, method="iv", instrument="cost_shifter", fixed_effects=["item"])
    >>> bool(abs(r.estimate - m.truth.elasticity.mean()) < 0.3)
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import polars as pl

from shopml.errors import ConfigError, DataError

__all__ = ["estimate_elasticity", "ElasticityResult", "residualize_ml"]

Z95 = 1.959963984540054


@dataclass
class ElasticityResult:
    """An elasticity estimate; ``segments`` holds one dict per segment when asked."""

    method: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    segments: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _result(method, est, se, n, segments=()) -> ElasticityResult:
    return ElasticityResult(method, float(est), float(se), float(est - Z95 * se), float(est + Z95 * se), int(n),
                            list(segments))


def _columns(data: pl.DataFrame, names) -> None:
    missing = [c for c in names if c not in data.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; have {data.columns}", column=missing[0])


def _log_col(data: pl.DataFrame, name: str, already_log: bool) -> np.ndarray:
    v = data[name].cast(pl.Float64).to_numpy()
    if already_log:
        bad = ~np.isfinite(v)
    else:
        bad = ~(v > 0) | ~np.isfinite(v)
        v = np.log(np.where(bad, 1.0, v))
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        raise DataError("non-positive or missing value where a log is taken", row=row, column=name)
    return v


def _group_codes(data: pl.DataFrame, cols: list[str]) -> np.ndarray | None:
    if not cols:
        return None
    key = data.select(pl.struct(cols).rank("dense").alias("k"))["k"].to_numpy()
    return key.astype(np.int64) - 1


def _demean(mat: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """Subtract group means column-wise (absorbs a fixed effect; no dummy matrix)."""
    if groups is None:
        return mat - mat.mean(axis=0)
    k = groups.max() + 1
    counts = np.bincount(groups, minlength=k).astype(float)
    out = np.empty_like(mat)
    for j in range(mat.shape[1]):
        means = np.bincount(groups, weights=mat[:, j], minlength=k) / counts
        out[:, j] = mat[:, j] - means[groups]
    return out


def _segment_codes(data: pl.DataFrame, segment: str | None):
    if segment is None:
        return None, []
    _columns(data, [segment])
    labels = data[segment].cast(pl.Utf8)
    uniq = sorted(labels.unique().to_list())
    return labels.rank("dense").to_numpy().astype(np.int64) - 1, uniq


def _naive(data, y, lp, fixed_effects, controls, segment):
    seg, labels = _segment_codes(data, segment)
    fe_cols = list(fixed_effects or []) + ([segment] if segment and segment not in (fixed_effects or []) else [])
    groups = _group_codes(data, fe_cols)
    n_groups = 1 if groups is None else int(groups.max() + 1)
    if seg is not None and not controls:
        beta, se = _segment_slopes(y, lp, seg, len(labels), groups, n_groups)
    else:
        if seg is None:
            cols = [lp[:, None]]
        else:  # log(price) x segment with controls: dense design (few segments expected)
            cols = [np.where(seg[:, None] == np.arange(len(labels))[None, :], lp[:, None], 0.0)]
        ctrl = [data[c].cast(pl.Float64).to_numpy()[:, None] for c in (controls or [])]
        x = _demean(np.hstack(cols + ctrl), groups)
        yd = _demean(y[:, None], groups)[:, 0]
        xtx = x.T @ x
        beta = np.linalg.solve(xtx, x.T @ yd)
        resid = yd - x @ beta
        dof = len(y) - x.shape[1] - n_groups
        se = np.sqrt(np.diag(np.linalg.inv(xtx) * (resid @ resid / dof)))
    if seg is None:
        return _result("naive", beta[0], se[0], len(y))
    segs = [_result("naive", beta[i], se[i], int((seg == i).sum())).to_dict() | {"segment": lab}
            for i, lab in enumerate(labels)]
    # Pooled summary: precision-weighted mean of the segment slopes.
    w = 1.0 / se[: len(labels)] ** 2
    est = float((w * beta[: len(labels)]).sum() / w.sum())
    return _result("naive", est, float(np.sqrt(1.0 / w.sum())), len(y), segs)


def _segment_slopes(y, lp, seg, k, groups, n_groups):
    """One slope per segment with segment intercepts (and finer fixed effects), without a
    dense n x k design: the fixed-effect groups nest in segments, so the regression is
    block diagonal. Standard errors use the pooled residual variance, as glm does."""
    xd = _demean(lp[:, None], groups)[:, 0]
    yd = _demean(y[:, None], groups)[:, 0]
    sxx = np.bincount(seg, weights=xd * xd, minlength=k)
    beta = np.bincount(seg, weights=xd * yd, minlength=k) / sxx
    resid = yd - beta[seg] * xd
    sigma2 = resid @ resid / (len(y) - k - n_groups)
    return beta, np.sqrt(sigma2 / sxx)


def _features(data: pl.DataFrame, controls: list[str]):
    """Controls as a float matrix for LightGBM; string columns become categorical codes."""
    mats, cat_idx = [], []
    for j, c in enumerate(controls):
        s = data[c]
        if s.dtype in (pl.Utf8, pl.Categorical, pl.Boolean) or s.dtype == pl.String:
            mats.append(s.cast(pl.Utf8).rank("dense").to_numpy().astype(float) - 1)
            cat_idx.append(j)
        else:
            mats.append(s.cast(pl.Float64).to_numpy())
    return np.column_stack(mats), cat_idx


def residualize_ml(x, targets, *, categorical=(), n_folds=5, seed=0, n_estimators=200, threads=2):
    """Cross-fitted residuals ``t - E[t | x]`` for each target column (LightGBM first stages).

    Each row's prediction comes from a model trained on the other folds (cross-fitting),
    which is what makes the second stage's standard error valid.
    """
    import lightgbm as lgb

    n = x.shape[0]
    folds = np.random.default_rng(seed).integers(0, n_folds, n)
    out = np.empty((n, len(targets)))
    params = dict(n_estimators=n_estimators, learning_rate=0.1, num_leaves=31, min_child_samples=50,
                  subsample=0.8, subsample_freq=1, n_jobs=threads, verbose=-1, random_state=seed)
    for j, t in enumerate(targets):
        for k in range(n_folds):
            tr, te = folds != k, folds == k
            model = lgb.LGBMRegressor(**params)
            model.fit(x[tr], t[tr], categorical_feature=list(categorical) or "auto")
            out[te, j] = t[te] - model.predict(x[te])
    return out


def _score_se(yr, dr, zr, theta):
    """Sandwich SE of theta solving E[(yr - theta*dr) * zr] = 0."""
    psi = (yr - theta * dr) * zr
    return float(np.sqrt((psi**2).sum()) / abs((zr * dr).sum()))


def _orthogonal(method, yr, dr, zr, seg, labels):
    theta = (zr * yr).sum() / (zr * dr).sum()
    se = _score_se(yr, dr, zr, theta)
    segs = []
    for i, lab in enumerate(labels):
        m = seg == i
        t = (zr[m] * yr[m]).sum() / (zr[m] * dr[m]).sum()
        segs.append(_result(method, t, _score_se(yr[m], dr[m], zr[m], t), int(m.sum())).to_dict() | {"segment": lab})
    return _result(method, theta, se, len(yr), segs)


def _linear_partial(data, fixed_effects, controls, targets):
    groups = _group_codes(data, list(fixed_effects or []))
    mat = _demean(np.column_stack(targets), groups)
    if controls:
        c = _demean(np.column_stack([data[x].cast(pl.Float64).to_numpy() for x in controls]), groups)
        coef, *_ = np.linalg.lstsq(c, mat, rcond=None)
        mat = mat - c @ coef
    return mat


def estimate_elasticity(
    data: pl.DataFrame,
    method: str = "naive",
    *,
    y: str = "log_units",
    price: str = "price",
    y_is_log: bool = True,
    fixed_effects: list[str] | None = None,
    controls: list[str] | None = None,
    instrument: str | None = None,
    segment: str | None = None,
    flexible: bool = False,
    n_folds: int = 5,
    n_estimators: int = 200,
    seed: int = 0,
    threads: int = 2,
) -> ElasticityResult:
    """Estimate the own-price elasticity of ``y`` (log quantity) on ``log(price)``.

    ``fixed_effects``: categorical columns absorbed as intercepts (naive, iv). ``controls``:
    numeric controls (naive, iv) or any control columns, string = categorical (dml and
    ``flexible`` iv). ``segment``: also estimate one elasticity per value of this column.

    Example:
        >>> import polars as pl, numpy as np
        >>> p = np.exp(np.random.default_rng(0).normal(0, .2, 500))
        >>> d = pl.DataFrame({"price": p, "log_units": 3 - 2 * np.log(p)})
        >>> round(estimate_elasticity(d).estimate, 6)
        -2.0
    """
    if method not in ("naive", "dml", "iv"):
        raise ConfigError(f"unknown elasticity method {method!r}: use naive, dml or iv")
    _columns(data, [y, price] + list(fixed_effects or []) + list(controls or []) + ([instrument] if instrument else []))
    yv = _log_col(data, y, y_is_log)
    lp = _log_col(data, price, False)
    if method == "naive":
        return _naive(data, yv, lp, fixed_effects, controls, segment)
    seg, labels = _segment_codes(data, segment)
    if method == "dml":
        if not controls and not fixed_effects:
            raise ConfigError("dml needs control columns (controls=[...])")
        x, cats = _features(data, list(fixed_effects or []) + list(controls or []))
        r = residualize_ml(x, [yv, lp], categorical=cats, n_folds=n_folds, seed=seed,
                           n_estimators=n_estimators, threads=threads)
        return _orthogonal("dml", r[:, 0], r[:, 1], r[:, 1], seg, labels)
    if instrument is None:
        raise ConfigError("iv needs an instrument column (instrument=...)")
    z = data[instrument].cast(pl.Float64).to_numpy()
    if flexible:
        x, cats = _features(data, list(fixed_effects or []) + list(controls or []))
        r = residualize_ml(x, [yv, lp, z], categorical=cats, n_folds=n_folds, seed=seed,
                           n_estimators=n_estimators, threads=threads)
    else:
        r = _linear_partial(data, fixed_effects, controls, [yv, lp, z])
    return _orthogonal("iv", r[:, 0], r[:, 1], r[:, 2], seg, labels)
