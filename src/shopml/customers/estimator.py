"""Customer purchase forecasting: a GRU over each customer's weekly purchase history.

:class:`CustomerForecaster` learns, from the calibration window only, the distribution of next
week's purchase days given the history so far (one-step targets: no look past the window). The
forecast for the next N weeks samples that distribution week by week (see
:mod:`shopml.customers.nets`), giving per customer the expected purchases, the median,
P(active) = P(at least one purchase in the N weeks) and, beside it, the BG/NBD baseline
(expected purchases and P(alive)) fitted on the same window.

Conventions (as for BG/NBD): weeks start at the first transaction date of the data; several
transactions on one day are one purchase. A customer listed in ``forecast(customers=...)`` with
no purchase in the window gets the population prior (the mean forecast), flagged ``prior``.

Example:
    >>> import polars as pl, datetime as dt
    >>> tx = pl.DataFrame({"customer_id": ["a", "a", "b"],
    ...                    "date": [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 1, 3)]})
    >>> f = CustomerForecaster(epochs=1, n_samples=8).fit(tx)
    >>> f.forecast(4, customers=["a", "b", "new"])["prior"].to_list()
    [False, False, True]
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import polars as pl
import torch

from shopml.customers.bgnbd import BGNBD, rfm_summary, sample_conditional
from shopml.customers.nets import N_FEATURES, CustomerGRU, WeekTracker
from shopml.errors import ConfigError, DataError
from shopml.estimator import Estimator
from shopml.evaluation.metrics import mae, rmse
from shopml.training import IndexBatches, TrainConfig, train

__all__ = ["CustomerForecaster", "transactions_to_days", "weekly_panel", "evaluate_holdout"]

KIND = "customer-forecaster"


def transactions_to_days(df: pl.DataFrame, start: dt.date | None = None):
    """Turn a transactions table into ``(ids, day, dollars, start)`` numpy arrays.

    Accepts ``customer_id``/``date``/``dollars`` (CDNOW reader) or the canonical events schema
    ``user_id``/``timestamp``/``price`` (only ``event_type == "purchase"`` rows are used).

    Example:
        >>> ids, day, usd, start = transactions_to_days(pl.DataFrame(
        ...     {"customer_id": ["a"], "date": [dt.date(2024, 1, 8)]}), start=dt.date(2024, 1, 1))
        >>> day.tolist()
        [7]
    """
    if "event_type" in df.columns:
        df = df.filter(pl.col("event_type") == "purchase")
    idc = next((c for c in ("customer_id", "user_id") if c in df.columns), None)
    datec = next((c for c in ("date", "timestamp") if c in df.columns), None)
    if idc is None or datec is None:
        raise DataError("transactions need a customer_id (or user_id) and a date (or timestamp) column",
                        column="customer_id" if idc is None else "date")
    if df.height == 0:
        raise DataError("no purchase transactions")
    dates = df[datec]
    if dates.dtype != pl.Date:
        dates = dates.cast(pl.Date) if dates.dtype.is_temporal() else dates.str.to_date(strict=False)
    if dates.null_count():
        raise DataError("unparsable or missing date", row=int(dates.is_null().arg_max()) + 1, column=datec)
    start = start or dates.min()
    day = (dates.cast(pl.Int64) - pl.Series([start]).cast(pl.Int64)[0]).to_numpy().astype(np.int64)
    usdc = next((c for c in ("dollars", "price") if c in df.columns), None)
    usd = df[usdc].cast(pl.Float64).fill_null(0.0).to_numpy() if usdc else np.ones(df.height)
    return df[idc].cast(pl.Utf8).to_numpy(), day, usd, start


def weekly_panel(ids, day, dollars, calibration_end: int):
    """Customers with a purchase in days [0, calibration_end] and their weekly history.

    Returns ``(customers, counts [N, W], spend [N, W])``: purchase *days* and dollars per week,
    ``W = calibration_end // 7 + 1``.

    Example:
        >>> c, n, s = weekly_panel(np.array(["a", "a", "a"]), np.array([0, 0, 8]), np.ones(3), 13)
        >>> n.tolist(), s.tolist()
        ([[1.0, 1.0]], [[2.0, 1.0]])
    """
    keep = (day >= 0) & (day <= calibration_end)
    cust, inv = np.unique(ids[keep], return_inverse=True)
    d, usd = day[keep], dollars[keep]
    n, w = len(cust), calibration_end // 7 + 1
    spend = np.zeros((n, w))
    np.add.at(spend, (inv, d // 7), usd)
    pairs = np.unique(np.stack([inv, d], 1), axis=0)
    counts = np.zeros((n, w))
    np.add.at(counts, (pairs[:, 0], pairs[:, 1] // 7), 1.0)
    return cust, counts, spend


def _canonical_order(counts: np.ndarray, spend: np.ndarray, first_seen: np.ndarray) -> np.ndarray:
    """Row order of the panel by the customers' own data: weekly counts, then weekly spend
    (lexicographic), ties by ``first_seen`` (the customer's first row in the input).

    Fitting in id order made the model depend on the ids: they are keyed pseudonyms, so
    another key (another machine, a fresh key file) reordered the customers, hence the
    validation split, the batches and the sampled paths, and the same command on the same
    data gave another MAE. Customers with equal data are interchangeable in training, so only
    ``first_seen`` (input order, the same under any key) decides which draws which sampled path.

    Example:
        >>> _canonical_order(np.array([[1.0], [0.0], [1.0]]), np.ones((3, 1)), np.array([2, 0, 1])).tolist()
        [1, 2, 0]
    """
    keys = [first_seen, *np.asarray(spend).T[::-1], *np.asarray(counts).T[::-1]]  # last key sorts first
    return np.lexsort(keys)


def _build_inputs(counts: torch.Tensor, spend: torch.Tensor):
    """Teacher-forced features [N, W, F] and the tracker state after the last week."""
    tr = WeekTracker.start(counts.shape[0])
    feats = [tr.step(counts[:, t], spend[:, t]) for t in range(counts.shape[1])]
    return torch.stack(feats, 1), tr


class CustomerForecaster(Estimator):
    """RNN forecast of each customer's purchases in the next N weeks, with P(active).

    Args:
        dim: GRU width. max_count: weekly purchase days are capped here (class "max_count+").
        epochs: maximum epochs (early stopping on held-out customers' next-week NLL, patience 3).
        lr, batch_size: AdamW settings. n_members: ensemble members (seeds and held-out customers
        differ; the aggregate forecast of one member varies, their average much less).
        n_samples: sampled paths per customer when forecasting (split over the members).
        valid_fraction: customers held out for early stopping. seed: seeds everything.
        max_seconds: wall-time budget of the whole fit, split evenly over the members.

    Learned: ``nets_``, ``customers_`` (ids, ordered by their data, not by id: see
    ``_canonical_order``), ``h_`` ([members, N, dim] state after the window),
    ``last_x_``, ``tracker_``,
    ``bgnbd_`` (baseline on the same window), ``calibration_end_`` (day index), ``start_``.

    Example:
        >>> CustomerForecaster(dim=16).dim
        16
    """

    kind = KIND

    def __init__(self, *, dim: int = 32, max_count: int = 4, epochs: int = 40, lr: float = 3e-3,
                 batch_size: int = 512, n_members: int = 3, n_samples: int = 120, valid_fraction: float = 0.1,
                 seed: int = 0, max_seconds: float | None = None):
        self.max_seconds = max_seconds  # wall-time budget for all members together
        self.dim, self.max_count, self.epochs, self.lr = dim, max_count, epochs, lr
        self.batch_size, self.n_members, self.n_samples = batch_size, n_members, n_samples
        self.valid_fraction, self.seed = valid_fraction, seed

    # ------------------------------------------------------------------ fit
    def fit(self, transactions: pl.DataFrame, calibration_end: dt.date | None = None,
            start: dt.date | None = None, verbose: bool = False, warm_start=None) -> "CustomerForecaster":
        """Fit on transactions up to ``calibration_end`` (inclusive; default: the last date).
        ``warm_start`` (a fitted forecaster of the same sizes) starts each RNN member from its
        weights: the nets read weekly counts, not customer ids, so they carry over to a longer
        log with new customers, and a few epochs refresh them. BG/NBD is refitted (closed form)."""
        ids, day, usd, start = transactions_to_days(transactions, start)
        end = int(day.max()) if calibration_end is None else (calibration_end - start).days
        return self.fit_arrays(ids, day, usd, end, start=start, verbose=verbose, warm_start=warm_start)

    def fit_arrays(self, ids, day, dollars, calibration_end: int, start: dt.date | None = None,
                   verbose: bool = False, warm_start=None) -> "CustomerForecaster":
        """Fit on arrays: ids, day index (days since ``start``), dollars; window days [0, calibration_end]."""
        if self.max_count < 1 or self.dim < 1 or self.epochs < 0:
            raise ConfigError("max_count and dim must be >= 1, epochs >= 0")
        if calibration_end < 7:
            raise DataError("the calibration window must span at least one week")
        if self.n_members < 1 or self.n_samples < self.n_members:
            raise ConfigError("n_members must be >= 1 and n_samples >= n_members")
        t0 = time.perf_counter()
        ids, day = np.asarray(ids), np.asarray(day)
        cust, counts, spend = weekly_panel(ids, day, np.asarray(dollars, float), calibration_end)
        if len(cust) == 0:
            raise DataError("no customer has a purchase in the calibration window")
        keep = (day >= 0) & (day <= calibration_end)
        first_seen = np.unique(ids[keep], return_index=True)[1]  # aligned with cust (both sorted ids)
        order = _canonical_order(counts, spend, first_seen)
        cust, counts, spend = cust[order], counts[order], spend[order]
        c, s = torch.tensor(counts, dtype=torch.float32), torch.tensor(spend, dtype=torch.float32)
        x, tracker = _build_inputs(c, s)
        y = c[:, 1:].clamp(max=self.max_count).long()
        mask = x[:, :-1, 1] > 0  # joined by week t: predict week t+1
        self.nets_, self.history_, hs = [], [], []
        for k in range(self.n_members):
            torch.manual_seed(self.seed + k)
            net = CustomerGRU(self.dim, self.max_count + 1, N_FEATURES)
            if warm_start is not None and k < len(warm_start.nets_):
                net.load_state_dict(warm_start.nets_[k].state_dict())  # same sizes, or it raises
            self.history_.append(_train(net, x[:, :-1], y, mask, self, self.seed + k, verbose))
            net.eval()
            with torch.no_grad():
                hs.append(net(x)[1][0])
            self.nets_.append(net)
        self.customers_, self.h_, self.last_x_, self.tracker_ = [str(v) for v in cust], torch.stack(hs), x[:, -1], tracker
        r = rfm_summary(ids, day, calibration_end)
        pos = np.searchsorted(r["customer"], cust)  # r is sorted by id; cust is in canonical order
        self.rfm_ = {k: r[k][pos] for k in ("x", "tx", "T")}
        self.bgnbd_ = BGNBD().fit(self.rfm_["x"], self.rfm_["tx"], self.rfm_["T"])
        self.calibration_end_, self.start_ = int(calibration_end), start
        self.train_seconds_ = time.perf_counter() - t0
        self._cache = {}
        return self

    # ------------------------------------------------------------- forecast
    @torch.no_grad()
    def simulate(self, horizon: int, n_samples: int | None = None, chunk: int = 1024):
        """Sample ``n_samples`` paths of the next ``horizon`` weeks for every fitted customer.

        Returns ``(weekly_mean [N, horizon], totals [N, n_samples])`` (purchase days).
        """
        self._check_fitted()
        if horizon < 1:
            raise ConfigError("horizon must be >= 1 week")
        k = n_samples or self.n_samples
        key = (horizon, k)
        if key not in self._cache:
            gen = torch.Generator().manual_seed(self.seed + 1)
            per = [k // self.n_members + (m < k % self.n_members) for m in range(self.n_members)]
            means, totals = [], []
            for lo in range(0, len(self.customers_), chunk):
                sl = slice(lo, lo + chunk)
                tr = _slice_tracker(self.tracker_, sl)
                runs = [_sample_paths(net, self.h_[m, sl], self.last_x_[sl], tr, horizon, per[m], gen)
                        for m, net in enumerate(self.nets_) if per[m] > 0]
                w = torch.tensor([p for p in per if p > 0], dtype=torch.float32)
                means.append(sum(r[0] * wi for r, wi in zip(runs, w)) / w.sum())
                totals.append(torch.cat([r[1] for r in runs], 1))
            self._cache[key] = (torch.cat(means).numpy(), torch.cat(totals).numpy())
        return self._cache[key]

    def forecast(self, horizon: int = 39, customers=None) -> pl.DataFrame:
        """Per-customer forecast of the next ``horizon`` weeks after the calibration window.

        Columns: customer_id, expected_purchases, median_purchases, p_active (P(>=1 purchase)),
        bgnbd_expected, p_alive (BG/NBD), prior (True where the customer had no purchase in
        the window and gets the population prior), and ``forecast``: the expected purchases of
        the served model (``forecast_model``: "rnn", or "bgnbd" after :meth:`serve`). ``customers`` (optional) picks and orders rows.
        """
        mean_w, totals = self.simulate(horizon)
        exp = mean_w.sum(1)
        bg = self.bgnbd_.conditional_expected_purchases(float(horizon), **self.rfm_)
        served = getattr(self, "winner_", "rnn")
        out = pl.DataFrame({
            "customer_id": self.customers_,
            "expected_purchases": exp,
            "median_purchases": np.median(totals, 1),
            "p_active": (totals > 0).mean(1),
            "bgnbd_expected": bg,
            "p_alive": self.bgnbd_.probability_alive(**self.rfm_),
            "prior": np.zeros(len(exp), dtype=bool),
            "forecast": bg if served == "bgnbd" else exp,
        }).with_columns(pl.lit(served).alias("forecast_model"))
        if customers is None:
            return out.sort("customer_id")
        return _with_prior(out, [str(c) for c in customers], self.bgnbd_, horizon)

    def serve(self, model: str) -> "CustomerForecaster":
        """Make ``forecast()["forecast"]`` come from ``"rnn"`` or ``"bgnbd"`` (the one that won
        on a validation window: both are fitted on the same calibration data)."""
        if model not in ("rnn", "bgnbd"):
            raise ConfigError(f"serve() takes 'rnn' or 'bgnbd', got {model!r}")
        self.winner_ = model
        self._cache = {}
        return self

    # ------------------------------------------------------------ save/load
    def _artifact(self):
        tensors = {f"net{m}.{k}": v for m, n in enumerate(self.nets_) for k, v in n.state_dict().items()}
        tensors["h"], tensors["last_x"] = self.h_, self.last_x_
        tensors.update({f"tracker.{i}": t for i, t in enumerate(self.tracker_.astuple())})
        tensors.update({f"rfm.{k}": v for k, v in self.rfm_.items()})
        meta = {"customers": self.customers_, "bgnbd": self.bgnbd_.params_,
                "bgnbd_ll": self.bgnbd_.log_likelihood_, "calibration_end": self.calibration_end_,
                "start": self.start_.isoformat() if self.start_ else None, "train_seconds": self.train_seconds_,
                "winner": getattr(self, "winner_", "rnn")}
        return {}, tensors, meta

    def _from_artifact(self, md) -> None:
        t = {k: torch.from_numpy(np.array(v)) for k, v in md.tensors.items()}
        self.nets_ = []
        for m in range(self.n_members):
            net = CustomerGRU(self.dim, self.max_count + 1, N_FEATURES)
            pre = f"net{m}."
            net.load_state_dict({k[len(pre):]: v for k, v in t.items() if k.startswith(pre)})
            self.nets_.append(net.eval())
        self.h_, self.last_x_ = t["h"], t["last_x"]
        self.tracker_ = WeekTracker(*(t[f"tracker.{i}"] for i in range(5)))
        self.rfm_ = {k: md.tensors[f"rfm.{k}"] for k in ("x", "tx", "T")}
        m = md.meta
        self.customers_, self.calibration_end_ = list(m["customers"]), int(m["calibration_end"])
        self.start_ = dt.date.fromisoformat(m["start"]) if m.get("start") else None
        self.bgnbd_ = BGNBD()
        self.bgnbd_.params_, self.bgnbd_.log_likelihood_ = m["bgnbd"], m["bgnbd_ll"]
        self.bgnbd_.n_customers_ = len(self.customers_)
        self.train_seconds_ = m.get("train_seconds")
        self.winner_ = m.get("winner", "rnn")
        self._cache = {}


def evaluate_holdout(model: CustomerForecaster, ids, day, holdout_end: int, n_bgnbd_samples: int = 200) -> dict:
    """Score the RNN and its BG/NBD baseline on the holdout days (calibration_end, holdout_end].

    Per customer: MAE of the point forecast. Two point forecasts per model are scored: the
    predictive mean (``mae_mean``) and the predictive median (``mae_median``; the one that
    minimizes absolute error), BG/NBD's median from its posterior (:func:`sample_conditional`).
    ``rmse_mean`` scores the mean with the error it is optimal for (absolute error rewards
    forecasts shrunk toward 0 when most customers buy nothing).
    Aggregate: the cumulative weekly holdout purchase curve of each model against the actual
    one; ``curve_mae`` is the mean absolute gap over the holdout weeks (in purchases).

    ``oracle_cell_median_mae`` is a yardstick that reads the answers (see
    :func:`_oracle_cell_median_mae`). Returns ``{"rnn": {...}, "bgnbd": {...},
    "oracle_cell_median_mae", "curve": {"week", "actual", "rnn", "bgnbd"}}``;
    weeks are counted from the start of the data (week 40 is the first holdout week on CDNOW).

    Example (not run; CDNOW weeks 1-39 calibration, 40-78 holdout)::

        from shopml.data.public import read_cdnow
        ids, day, usd, _ = transactions_to_days(read_cdnow("CDNOW_master.txt"))
        m = CustomerForecaster().fit_arrays(ids, day, usd, calibration_end=272)
        evaluate_holdout(m, ids, day, holdout_end=545)["rnn"]["curve_mae"]
    """
    model._check_fitted()
    cal = model.calibration_end_
    weeks = (holdout_end - cal) // 7
    if weeks < 1:
        raise ConfigError("the holdout must span at least one week")
    rfm = rfm_summary(np.asarray(ids), np.asarray(day), cal, holdout_end)
    row = {str(c): i for i, c in enumerate(rfm["customer"])}
    pos = np.array([row.get(c, -1) for c in model.customers_])
    if len(row) != len(pos) or (pos < 0).any():
        raise DataError("the transactions do not match the customers the model was fitted on")
    rfm = {k: v[pos] for k, v in rfm.items()}  # in the model's customer order
    y = rfm["x_holdout"]
    mean_w, totals = model.simulate(weeks)
    bg = model.bgnbd_
    bg_draws = sample_conditional(bg, float(weeks), **model.rfm_, n_samples=n_bgnbd_samples, seed=model.seed)
    bg_cum = np.array([bg.conditional_expected_purchases(float(h), **model.rfm_).sum() for h in range(1, weeks + 1)])
    _, inv = np.unique(np.asarray(ids), return_inverse=True)
    pairs = np.unique(np.stack([inv, np.asarray(day)], 1), axis=0)
    hd = pairs[(pairs[:, 1] > cal) & (pairs[:, 1] <= cal + 7 * weeks), 1]
    actual = np.cumsum(np.bincount((hd - cal - 1) // 7, minlength=weeks))[:weeks].astype(float)
    rnn_cum = np.cumsum(mean_w.sum(0))

    def scores(mean, median, cum):
        return {"mae_mean": mae(y, mean), "mae_median": mae(y, median), "rmse_mean": rmse(y, mean),
                "curve_mae": mae(actual, cum), "holdout_total": float(mean.sum())}

    first_week = cal // 7 + 2
    return {
        "rnn": scores(mean_w.sum(1), np.median(totals, 1), rnn_cum),
        "bgnbd": scores(bg.conditional_expected_purchases(float(weeks), **model.rfm_), np.median(bg_draws, 1), bg_cum),
        "actual_total": float(y.sum()),
        "oracle_cell_median_mae": _oracle_cell_median_mae(rfm["x"], rfm["tx"], y),
        "curve": {"week": list(range(first_week, first_week + weeks)), "actual": actual.tolist(),
                  "rnn": rnn_cum.tolist(), "bgnbd": bg_cum.tolist()},
    }


def _oracle_cell_median_mae(x: np.ndarray, tx: np.ndarray, y: np.ndarray, tx_weeks: float = 5.0) -> float:
    """MAE of an oracle that knows the holdout: customers grouped by (repeat purchases,
    recency in ``tx_weeks`` bins), each group forecast with its own holdout median.

    Not a model (it reads the answers): it shows how low per-customer MAE can go from the
    RFM summary, which puts the MAE bars in scale.
    """
    _, group = np.unique(np.stack([x, np.floor(tx / tx_weeks)], 1), axis=0, return_inverse=True)
    group = group.ravel()
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    medians = np.array([np.median(c) for c in np.split(y[order], bounds)])
    return mae(y, medians[group])


def _slice_tracker(tr: WeekTracker, sl: slice) -> WeekTracker:
    return WeekTracker(*(t[sl] for t in tr.astuple()))


def _sample_paths(net, h, last_x, tracker: WeekTracker, horizon: int, k: int, gen):
    """Roll the net forward ``horizon`` weeks, k sampled paths per customer (customer-major)."""
    n = h.shape[0]
    hk = h.repeat_interleave(k, 0)[None]
    tr = tracker.repeat(k)
    # The first sampled week comes from the head over the last observed week's output and features.
    feats = last_x.repeat_interleave(k, 0)
    counts = []
    head_in = torch.cat([hk[0], feats], -1)
    for _ in range(horizon):
        # Inverse-CDF sampling: several times faster than torch.multinomial on 1e5+ rows.
        cdf = torch.softmax(net.head(head_in), -1).cumsum(-1)
        u = torch.rand(cdf.shape[0], 1, generator=gen)
        c = (cdf[:, :-1] < u).sum(-1).float()
        counts.append(c)
        feats = tr.step(c)
        out, hk = net.gru(feats[:, None], hk)
        head_in = torch.cat([out[:, 0], feats], -1)
    paths = torch.stack(counts, 1).view(n, k, horizon)
    return paths.mean(1), paths.sum(2)


def _with_prior(out: pl.DataFrame, wanted: list[str], bg: BGNBD, horizon: int) -> pl.DataFrame:
    """Rows for ``wanted`` ids; unknown ones get the population prior, flagged."""
    known = pl.DataFrame({"customer_id": wanted}).join(out, on="customer_id", how="left", maintain_order="left")
    miss = known["expected_purchases"].is_null()
    prior = {
        "expected_purchases": float(out["expected_purchases"].mean()),
        "median_purchases": float(out["median_purchases"].median()),
        "p_active": float(out["p_active"].mean()),
        "bgnbd_expected": float(bg.expected_purchases(float(horizon))),
        "p_alive": 1.0,
    }
    served = out["forecast_model"][0] if out.height else "rnn"
    prior["forecast"] = prior["bgnbd_expected" if served == "bgnbd" else "expected_purchases"]
    return known.with_columns(
        [pl.when(miss).then(pl.lit(v)).otherwise(pl.col(k)).alias(k) for k, v in prior.items()]
        + [miss.alias("prior"), pl.lit(served).alias("forecast_model")]
    )


def _train(net, x, y, mask, cfg: CustomerForecaster, seed: int, verbose: bool) -> list[float]:
    """Next-week cross-entropy with the shared loop; early stopping on held-out customers' NLL.

    Only calibration weeks are targets, so nothing after the window leaks into training.
    """
    g = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    perm = torch.randperm(n, generator=g)
    n_val = int(n * cfg.valid_fraction) if n >= 20 else 0
    val, tr = (perm[:n_val], perm[n_val:]) if n_val else (perm, perm)
    ce = torch.nn.CrossEntropyLoss()

    def loss_fn(model, batch):
        xb, yb, mb = batch
        return ce(model(xb)[0][mb], yb[mb])

    def validate(model):
        return {"neg_nll": -float(loss_fn(model, (x[val], y[val], mask[val])))}

    res = train(net, loss_fn, IndexBatches(x[tr], y[tr], mask[tr]), validate=validate,
                config=TrainConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, patience=3,
                                   monitor="neg_nll", seed=seed, progress=True, threads=None, grad_clip=1.0,
                                   max_seconds=None if cfg.max_seconds is None else cfg.max_seconds / cfg.n_members))
    return [-r["neg_nll"] for r in res.history if "neg_nll" in r]
