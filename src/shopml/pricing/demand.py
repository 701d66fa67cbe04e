"""Neural demand estimator: an ensemble of :class:`~shopml.pricing.nets.MonotoneDemandNet`.

Each member is trained (with :func:`shopml.training.train`) on a bootstrap resample of the
rows; the spread of the members gives intervals for units, elasticities and, through the
optimizer, revenue and profit. Predicted demand is non-increasing in own price by
construction (see ``nets.py``).

Example:
    >>> from shopml.data.market import simulate_market
    >>> m = simulate_market(n_items=4, n_stores=3, n_weeks=20, seed=0, confounded=False)
    >>> model = NeuralDemand(categorical=["item", "store"], numeric=["promo"], n_members=2, epochs=3).fit(m.panel)
    >>> curve = model.elasticity_curve(0, [2.0, 3.0])
    >>> bool((curve["elasticity"] <= 0).all())
    True
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from shopml.errors import DataError
from shopml.estimator import Estimator
from shopml.evaluation.metrics import rmse
from shopml.pricing.nets import MonotoneDemandNet
from shopml.training import IndexBatches, TrainConfig, torch_threads, train

__all__ = ["NeuralDemand"]

_EVAL_BATCH = 65536


class NeuralDemand(Estimator):
    """Units sold as a function of own price and context, monotone in price, with intervals.

    ``categorical``: columns embedded (item/brand, store, week...); ``numeric``: columns
    standardized (promotion flag, log competitor price, demographics...). ``item``: the
    column that :meth:`elasticity_curve` indexes. ``y`` is log units when ``y_is_log``.
    """

    kind = "pricing.neural_demand"

    def __init__(self, *, price="price", y="log_units", y_is_log=True, categorical=("item",), numeric=(),
                 item="item", n_members=5, bootstrap=True, epochs=20, batch_size=1024, lr=3e-3,
                 weight_decay=1e-4, dim=8, hidden=32, price_units=8, patience=3, seed=0, threads=2,
                 progress=False, max_seconds=None):
        self.max_seconds = max_seconds  # wall-time budget of the whole fit, split over the members
        self.price, self.y, self.y_is_log = price, y, y_is_log
        self.categorical, self.numeric, self.item = categorical, numeric, item
        self.n_members, self.bootstrap, self.epochs, self.batch_size = n_members, bootstrap, epochs, batch_size
        self.lr, self.weight_decay, self.dim, self.hidden = lr, weight_decay, dim, hidden
        self.price_units, self.patience, self.seed, self.threads = price_units, patience, seed, threads
        self.progress = progress

    # ---------------------------------------------------------------- encoding
    def _check(self, data: pl.DataFrame, need_y: bool) -> None:
        cols = [self.price, *self.categorical, *self.numeric] + ([self.y, self.item] if need_y else [])
        missing = [c for c in cols if c not in data.columns]
        if missing:
            raise DataError(f"missing column(s) {missing}", column=missing[0])

    def _encode(self, data: pl.DataFrame, price=None):
        """(cats long[n, C], nums float[n, D], s float[n]) for ``data`` (and ``price`` override)."""
        cats = [
            data[c].cast(pl.Utf8).replace_strict(self.vocab_[c], list(range(1, len(self.vocab_[c]) + 1)),
                                                 default=0, return_dtype=pl.Int64).to_numpy()
            for c in self.categorical
        ]
        cats = np.column_stack(cats) if cats else np.zeros((data.height, 0), dtype=np.int64)
        nums = [data[c].cast(pl.Float64).to_numpy() for c in self.numeric]
        nums = (np.column_stack(nums) - self.num_mean_) / self.num_std_ if nums else np.zeros((data.height, 0))
        p = data[self.price].cast(pl.Float64).to_numpy() if price is None else np.broadcast_to(price, data.height)
        if not (np.asarray(p) > 0).all():
            row = int(np.flatnonzero(~(np.asarray(p) > 0))[0]) + 1
            raise DataError("price must be positive", row=row, column=self.price)
        s = -(np.log(p) - self.price_mu_) / self.price_sd_
        return (torch.tensor(cats, dtype=torch.long), torch.tensor(nums, dtype=torch.float32),
                torch.tensor(s, dtype=torch.float32))

    def _fit_encoding(self, data: pl.DataFrame) -> None:
        self.vocab_ = {c: sorted(data[c].cast(pl.Utf8).unique().to_list()) for c in self.categorical}
        nums = [data[c].cast(pl.Float64).to_numpy() for c in self.numeric]
        self.num_mean_ = np.array([v.mean() for v in nums])
        self.num_std_ = np.array([v.std() or 1.0 for v in nums])
        lp = np.log(data[self.price].cast(pl.Float64).to_numpy())
        self.price_mu_, self.price_sd_ = float(lp.mean()), float(lp.std() or 1.0)

    def _target(self, data: pl.DataFrame) -> torch.Tensor:
        y = data[self.y].cast(pl.Float64).to_numpy()
        if not self.y_is_log:
            if not (y > 0).all():
                raise DataError("units must be positive to take logs", column=self.y)
            y = np.log(y)
        return torch.tensor(y, dtype=torch.float32)

    def _new_net(self) -> MonotoneDemandNet:
        cards = [len(self.vocab_[c]) + 1 for c in self.categorical]
        return MonotoneDemandNet(cards, len(self.numeric), dim=self.dim, hidden=self.hidden,
                                 price_units=self.price_units)

    # ---------------------------------------------------------------- fitting
    def fit(self, data: pl.DataFrame) -> "NeuralDemand":
        """Train ``n_members`` networks on bootstrap resamples; 10% of rows are held out for
        early stopping and for the residual variance used to turn log units into units."""
        self._check(data, need_y=True)
        if data.height < 20:
            raise DataError(f"need at least 20 rows to fit a demand model, got {data.height}")
        with torch_threads(self.threads):
            return self._fit(data)

    def _fit(self, data: pl.DataFrame) -> "NeuralDemand":
        self._fit_encoding(data)
        cats, nums, s = self._encode(data)
        y = self._target(data)
        rng = np.random.default_rng(self.seed)
        hold = rng.random(data.height) < 0.1
        tr, va = np.flatnonzero(~hold), np.flatnonzero(hold)
        self.members_, self.histories_ = [], []
        for k in range(self.n_members):
            idx = rng.choice(tr, len(tr), replace=True) if self.bootstrap and self.n_members > 1 else tr
            torch.manual_seed(self.seed + k)
            net = self._new_net()
            with torch.no_grad():  # start at the mean log units: no epochs spent learning the level
                net.level.bias.fill_(float(y[idx].mean()))
            vt = (cats[va], nums[va], s[va], y[va])
            res = train(net, _mse_loss, IndexBatches(cats[idx], nums[idx], s[idx], y[idx]),
                        validate=lambda m, vt=vt: {"neg_mse": -float(_mse_loss(m, vt))},
                        config=TrainConfig(epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay,
                                           batch_size=self.batch_size, patience=self.patience, monitor="neg_mse",
                                           seed=self.seed + k, progress=self.progress, threads=self.threads,
                                           max_seconds=None if self.max_seconds is None
                                           else self.max_seconds / self.n_members))
            net.eval()
            self.members_.append(net)
            self.histories_.append(res.history)
        y_va, pred = y[va].numpy(), self._log_members(cats[va], nums[va], s[va]).mean(0)
        self.sigma2_ = float(np.var(y_va - pred)) if len(va) > 1 else 0.0
        self.holdout_rmse_ = rmse(y_va, pred)  # NaN without holdout rows
        self._keep_reference_rows(data, cats, nums, rng)
        return self

    def _keep_reference_rows(self, data, cats, nums, rng, per_item: int = 32) -> None:
        """Remember a few context rows per item: :meth:`elasticity_curve` averages over them."""
        order = rng.permutation(data.height)
        key = data[self.item].cast(pl.Utf8).to_numpy()[order]
        keep = pl.DataFrame({"k": key, "i": order}).with_columns(pl.int_range(pl.len()).over("k").alias("r"))
        rows = torch.tensor(keep.filter(pl.col("r") < per_item)["i"].to_numpy())
        self.ref_cats_, self.ref_nums_ = cats[rows], nums[rows]
        self.ref_item_ = data[self.item].cast(pl.Utf8).to_numpy()[rows.numpy()].astype(str)

    def _log_members(self, cats, nums, s) -> np.ndarray:
        out = np.empty((len(self.members_), len(s)), dtype=np.float64)
        with torch.no_grad():
            for a in range(0, len(s), _EVAL_BATCH):
                b = slice(a, a + _EVAL_BATCH)
                for k, net in enumerate(self.members_):
                    out[k, b] = net(cats[b], nums[b], s[b]).numpy()
        return out

    def predict_members(self, data: pl.DataFrame, price=None) -> np.ndarray:
        """Expected units per ensemble member, shape [n_members, n_rows]."""
        self._check_fitted()
        self._check(data, need_y=False)
        return np.exp(self._log_members(*self._encode(data, price)) + 0.5 * self.sigma2_)

    def predict(self, data: pl.DataFrame, price=None) -> np.ndarray:
        """Expected units per row (ensemble mean) at the row's price or at ``price``."""
        return self.predict_members(data, price).mean(0)

    def _elasticity_members(self, cats, nums, s) -> np.ndarray:
        out = np.empty((len(self.members_), len(s)))
        for a in range(0, len(s), _EVAL_BATCH):
            b = slice(a, a + _EVAL_BATCH)
            for k, net in enumerate(self.members_):
                sb = s[b].clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(net(cats[b], nums[b], sb).sum(), sb)
                # d log q / d log p = d log q / ds * ds / d log p, with ds / d log p = -1 / sd.
                out[k, b] = -grad.numpy() / self.price_sd_
        return out

    def elasticity(self, data: pl.DataFrame, price=None) -> np.ndarray:
        """d log q / d log p per member and row (autograd), shape [n_members, n_rows]."""
        self._check_fitted()
        self._check(data, need_y=False)
        return self._elasticity_members(*self._encode(data, price))

    def average_elasticity(self, data: pl.DataFrame, by: str | None = None) -> list[dict]:
        """Mean elasticity at the observed prices, overall or per value of ``by``; ``se`` is
        the standard deviation of the members' means (the bootstrap standard error)."""
        e = self.elasticity(data)
        groups = np.zeros(data.height, dtype=np.int64) if by is None else data[by].cast(pl.Utf8).rank("dense").to_numpy() - 1
        labels = ["all"] if by is None else sorted(data[by].cast(pl.Utf8).unique().to_list())
        counts = np.bincount(groups, minlength=len(labels))
        means = np.stack([np.bincount(groups, weights=row, minlength=len(labels)) / counts for row in e])
        return [{"segment": lab, "elasticity": float(means[:, j].mean()), "se": float(means[:, j].std(ddof=1))
                 if len(self.members_) > 1 else float("nan"), "n": int(counts[j])} for j, lab in enumerate(labels)]

    def curve(self, context: pl.DataFrame, prices) -> np.ndarray:
        """Units [n_members, n_prices] at each candidate price, averaged over the context rows
        (e.g. one item x store over its recent weeks). Used by the optimizer."""
        self._check_fitted()
        self._check(context, need_y=False)
        prices = np.asarray(prices, dtype=float)
        cats, nums = self._encoded_context(context)
        s = torch.as_tensor(-(np.log(prices) - self.price_mu_) / self.price_sd_, dtype=torch.float32)
        with torch.no_grad():
            logq = np.stack([net.grid(cats, nums, s).double().numpy() for net in self.members_])  # [M, r, p]
        return np.exp(logq + 0.5 * self.sigma2_).mean(1)

    def _encoded_context(self, context: pl.DataFrame):
        """The context's encoding, cached for the last frame seen: an optimizer request calls
        :meth:`curve` several times on one context, and encoding (Polars lookups) costs more
        than the networks' forward pass over a few hundred prices."""
        cached = getattr(self, "_context_cache", None)
        if cached is not None and cached[0] is context:
            return cached[1]
        cats, nums, _ = self._encode(context)
        self._context_cache = (context, (cats, nums))
        return cats, nums

    def elasticity_curve(self, item, prices) -> dict:
        """Elasticity and units of ``item`` over ``prices`` (plain arrays, for plots): mean and
        5-95% band across members, averaged over the item's reference context rows."""
        self._check_fitted()
        rows = np.flatnonzero(self.ref_item_ == str(item))
        if len(rows) == 0:
            raise DataError(f"unknown item {item!r}", column=self.item)
        prices = np.asarray(prices, dtype=float)
        p, r = len(prices), len(rows)
        s = torch.as_tensor(-(np.log(prices) - self.price_mu_) / self.price_sd_, dtype=torch.float32).repeat(r)
        cats, nums = self.ref_cats_[rows].repeat_interleave(p, 0), self.ref_nums_[rows].repeat_interleave(p, 0)
        e = self._elasticity_members(cats, nums, s).reshape(-1, r, p).mean(1)
        q = np.exp(self._log_members(cats, nums, s) + 0.5 * self.sigma2_).reshape(-1, r, p).mean(1)
        return {"item": str(item), "prices": prices, "elasticity": e.mean(0), "elasticity_low": np.quantile(e, 0.05, 0),
                "elasticity_high": np.quantile(e, 0.95, 0), "units": q.mean(0), "units_low": np.quantile(q, 0.05, 0),
                "units_high": np.quantile(q, 0.95, 0)}

    def _artifact(self):
        tensors = {f"m{k}.{name}": t.detach().numpy() for k, net in enumerate(self.members_)
                   for name, t in net.state_dict().items()}
        tensors.update(ref_cats=self.ref_cats_.numpy(), ref_nums=self.ref_nums_.numpy(),
                       num_mean=np.asarray(self.num_mean_, dtype=float), num_std=np.asarray(self.num_std_, dtype=float))
        params = {k: list(v) for k, v in self.get_params(deep=False).items() if isinstance(v, tuple)}
        meta = {"vocab": self.vocab_, "ref_item": self.ref_item_.tolist(), "price_mu": self.price_mu_,
                "price_sd": self.price_sd_, "sigma2": self.sigma2_, "holdout_rmse": self.holdout_rmse_,
                "n_members": len(self.members_)}
        return params, tensors, meta

    def _from_artifact(self, md) -> None:
        self.vocab_ = md.meta["vocab"]
        self.price_mu_, self.price_sd_ = md.meta["price_mu"], md.meta["price_sd"]
        self.sigma2_, self.holdout_rmse_ = md.meta["sigma2"], md.meta["holdout_rmse"]
        self.num_mean_, self.num_std_ = md.tensors["num_mean"], md.tensors["num_std"]
        self.ref_cats_ = torch.tensor(md.tensors["ref_cats"], dtype=torch.long)
        self.ref_nums_ = torch.tensor(md.tensors["ref_nums"], dtype=torch.float32)
        self.ref_item_ = np.array(md.meta["ref_item"], dtype=str)
        self.members_ = []
        for k in range(md.meta["n_members"]):
            net = self._new_net()
            prefix = f"m{k}."
            net.load_state_dict({n[len(prefix):]: torch.tensor(v) for n, v in md.tensors.items() if n.startswith(prefix)})
            net.eval()
            self.members_.append(net)


def _mse_loss(model, batch) -> torch.Tensor:
    cats, nums, s, y = batch
    return torch.nn.functional.mse_loss(model(cats, nums, s), y)
