"""Purchase intent from a session's summary features (UCI Online Shoppers Purchasing Intention).

:class:`IntentClassifier` is an MLP ensemble on the 17 features: categoricals one-hot encoded,
skewed counts/durations ``log1p``-ed and standardized, plus an explicit ``PageValues > 0`` flag
(PageValues is by far the strongest signal; the flag lets a small net use it as a gate). Each
ensemble member early-stops on an inner stratified split of the training rows only.
:func:`cross_validate_intent` runs it beside LightGBM and logistic regression on the *same*
stratified folds. The UCI file is read by :func:`shopml.data.public.read_online_shoppers`.

Example:
    >>> X, y = synthetic_intent(400, seed=0)
    >>> clf = IntentClassifier(n_members=1, epochs=5).fit(X, y)
    >>> clf.predict_proba(X).shape
    (400,)
"""

from __future__ import annotations

import time
import numpy as np
import polars as pl
import torch
from torch import nn

from shopml.errors import DataError, NotFittedError
from shopml.estimator import Estimator
from shopml.evaluation.metrics import auc
from shopml.intent.nets import IntentMLP
from shopml.training import IndexBatches, TrainConfig, train

__all__ = ["IntentClassifier", "IntentMLP", "TabularEncoder", "cross_validate_intent",
           "synthetic_intent", "NUMERIC", "CATEGORICAL", "LOG_COLUMNS"]

NUMERIC = ["Administrative", "Administrative_Duration", "Informational", "Informational_Duration",
           "ProductRelated", "ProductRelated_Duration", "BounceRates", "ExitRates", "PageValues", "SpecialDay"]
CATEGORICAL = ["Month", "OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType", "Weekend"]
LOG_COLUMNS = ["Administrative", "Administrative_Duration", "Informational", "Informational_Duration",
               "ProductRelated", "ProductRelated_Duration", "PageValues"]
KIND = "intent-classifier"


class TabularEncoder:
    """One-hot categoricals (vocabulary from fit; unseen -> all zeros), log1p + standardize numerics.

    Example:
        >>> X, _ = synthetic_intent(50, seed=1)
        >>> TabularEncoder().fit(X).transform(X).shape[0]
        50
    """

    def fit(self, X: pl.DataFrame) -> "TabularEncoder":
        num = self._numeric(X)
        self.mean_, self.std_ = num.mean(0), num.std(0) + 1e-6
        self.vocab_ = {c: sorted(X[c].cast(pl.Utf8).unique().drop_nulls().to_list()) for c in CATEGORICAL}
        return self

    @staticmethod
    def _numeric(X: pl.DataFrame) -> np.ndarray:
        cols = [np.log1p(np.clip(X[c].cast(pl.Float64).fill_null(0).to_numpy(), 0, None)) if c in LOG_COLUMNS
                else X[c].cast(pl.Float64).fill_null(0).to_numpy() for c in NUMERIC]
        cols.append((X["PageValues"].cast(pl.Float64).fill_null(0).to_numpy() > 0).astype(np.float64))
        return np.stack(cols, 1)

    def transform(self, X: pl.DataFrame) -> np.ndarray:
        if not hasattr(self, "vocab_"):
            raise NotFittedError("TabularEncoder is not fitted")
        parts = [(self._numeric(X) - self.mean_) / self.std_]
        for c, vocab in self.vocab_.items():
            v = X[c].cast(pl.Utf8).to_numpy()
            parts.append((v[:, None] == np.array(vocab, dtype=object)[None, :]).astype(np.float64))
        return np.concatenate(parts, 1).astype(np.float32)


def _inner_split(y: np.ndarray, frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, validation) row indices of the training rows."""
    rng = np.random.default_rng(seed)
    val = np.concatenate([rng.permutation(np.flatnonzero(y == k))[: max(1, int(frac * (y == k).sum()))]
                          for k in (0, 1)])
    mask = np.zeros(len(y), dtype=bool)
    mask[val] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


class IntentClassifier(Estimator):
    """Ensemble of ``n_members`` MLPs (different seeds and inner splits) for P(purchase).

    Args: hidden, dropout, epochs, lr, weight_decay, batch_size, patience, n_members,
    valid_fraction (inner early-stopping split of the training rows), seed.

    Learned: ``encoder_``, ``nets_``.

    Example:
        >>> IntentClassifier(n_members=3).n_members
        3
    """

    kind = KIND

    def __init__(self, *, hidden: int = 64, dropout: float = 0.3, epochs: int = 60, lr: float = 2e-3,
                 weight_decay: float = 1e-4, batch_size: int = 256, patience: int = 8, n_members: int = 5,
                 valid_fraction: float = 0.15, seed: int = 0):
        self.hidden, self.dropout, self.epochs, self.lr = hidden, dropout, epochs, lr
        self.weight_decay, self.batch_size, self.patience = weight_decay, batch_size, patience
        self.n_members, self.valid_fraction, self.seed = n_members, valid_fraction, seed

    def fit(self, X: pl.DataFrame, y) -> "IntentClassifier":
        """Fit on a features frame (the 17 UCI columns) and 0/1 labels. Returns self."""
        y = np.asarray(y).astype(np.int64)
        if len(y) != X.height or len(np.unique(y)) != 2:
            raise DataError("labels must be 0/1 with both classes present, one per row")
        self.encoder_ = TabularEncoder().fit(X)
        Z = torch.from_numpy(self.encoder_.transform(X))
        yt = torch.from_numpy(y.astype(np.float32))
        loss = lambda m, b: nn.functional.binary_cross_entropy_with_logits(m(b[0]), b[1])  # noqa: E731
        self.nets_ = []
        for k in range(self.n_members):
            tr, va = _inner_split(y, self.valid_fraction, self.seed + k)
            torch.manual_seed(self.seed + k)
            net = IntentMLP(Z.shape[1], self.hidden, self.dropout)
            zv, yv = Z[va], y[va]
            cfg = TrainConfig(epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay, monitor="auc",
                              batch_size=self.batch_size, patience=self.patience, seed=self.seed + k,
                              progress=False, threads=None)
            train(net, loss, IndexBatches(Z[tr], yt[tr]), validate=lambda m: {"auc": auc(yv, m(zv).numpy())},
                  config=cfg)
            net.eval()
            self.nets_.append(net)
        return self

    def predict_proba(self, X: pl.DataFrame) -> np.ndarray:
        """P(purchase) per row: the mean of the members' probabilities."""
        self._check_fitted()
        Z = torch.from_numpy(self.encoder_.transform(X))
        with torch.no_grad():
            return np.mean([torch.sigmoid(n(Z)).numpy() for n in self.nets_], 0)

    def _artifact(self):
        tensors = {f"m{i}.{k}": v for i, n in enumerate(self.nets_) for k, v in n.state_dict().items()}
        tensors.update({"enc.mean": self.encoder_.mean_, "enc.std": self.encoder_.std_})
        return {}, tensors, {"vocab": self.encoder_.vocab_, "n_in": int(self.nets_[0].net[0].in_features)}

    def _from_artifact(self, md) -> None:
        self.encoder_ = TabularEncoder()
        self.encoder_.mean_, self.encoder_.std_ = md.tensors["enc.mean"], md.tensors["enc.std"]
        self.encoder_.vocab_ = md.meta["vocab"]
        self.nets_ = []
        for i in range(self.n_members):
            net = IntentMLP(md.meta["n_in"], self.hidden, self.dropout)
            pre = f"m{i}."
            net.load_state_dict({k[len(pre):]: torch.from_numpy(np.array(v)) for k, v in md.tensors.items()
                                 if k.startswith(pre)})
            self.nets_.append(net.eval())


def _raw_codes(X: pl.DataFrame) -> np.ndarray:
    """Numeric matrix for LightGBM: numerics as-is, categoricals as integer codes (sorted vocab)."""
    cols = [X[c].cast(pl.Float64).fill_null(0).to_numpy() for c in NUMERIC]
    for c in CATEGORICAL:
        v = X[c].cast(pl.Utf8).to_numpy()
        cols.append(np.unique(v, return_inverse=True)[1].astype(np.float64))
    return np.stack(cols, 1)


def cross_validate_intent(X: pl.DataFrame, y, *, n_splits: int = 5, seed: int = 0, neural=None,
                          models=("neural", "lightgbm", "logistic")) -> dict[str, dict]:
    """AUC per fold of each model on the same stratified folds; returns ``{model: {"auc": [...],
    "train_seconds": float}}``. ``neural`` is an IntentClassifier kwargs dict."""
    from lightgbm import LGBMClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y).astype(np.int64)
    folds = list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    raw = _raw_codes(X)
    out = {m: {"auc": [], "train_seconds": 0.0} for m in models}
    for tr, te in folds:
        Xtr, Xte = X[tr], X[te]
        for m in models:
            t0 = time.perf_counter()
            if m == "neural":
                p = IntentClassifier(**(neural or {}), seed=seed).fit(Xtr, y[tr]).predict_proba(Xte)
            elif m == "lightgbm":
                gbm = LGBMClassifier(n_estimators=300, learning_rate=0.03, random_state=seed, n_jobs=2, verbose=-1)
                p = gbm.fit(raw[tr], y[tr]).predict_proba(raw[te])[:, 1]
            else:
                enc = TabularEncoder().fit(Xtr)
                lr = LogisticRegression(max_iter=5000)
                p = lr.fit(enc.transform(Xtr), y[tr]).predict_proba(enc.transform(Xte))[:, 1]
            out[m]["train_seconds"] += time.perf_counter() - t0
            out[m]["auc"].append(auc(y[te], p))
    return out


def synthetic_intent(n: int, seed: int = 0) -> tuple[pl.DataFrame, np.ndarray]:
    """A small table with the UCI columns whose label depends on PageValues, ExitRates and Month."""
    rng = np.random.default_rng(seed)
    pv = np.where(rng.random(n) < 0.25, rng.lognormal(2.5, 1.0, n), 0.0)
    exit_r = rng.beta(1, 20, n)
    month = rng.choice(["Feb", "Mar", "May", "Nov", "Dec"], n)
    logit = -2.5 + 1.2 * np.log1p(pv) - 40 * exit_r + 1.0 * (month == "Nov")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    cnt = rng.poisson(3, (n, 3)).astype(float)
    X = pl.DataFrame({
        "Administrative": cnt[:, 0], "Administrative_Duration": cnt[:, 0] * rng.exponential(30, n),
        "Informational": cnt[:, 1], "Informational_Duration": cnt[:, 1] * rng.exponential(20, n),
        "ProductRelated": cnt[:, 2] * 5, "ProductRelated_Duration": cnt[:, 2] * rng.exponential(200, n),
        "BounceRates": exit_r / 2, "ExitRates": exit_r, "PageValues": pv, "SpecialDay": np.zeros(n),
        "Month": month, "OperatingSystems": rng.integers(1, 4, n), "Browser": rng.integers(1, 5, n),
        "Region": rng.integers(1, 9, n), "TrafficType": rng.integers(1, 10, n),
        "VisitorType": rng.choice(["Returning_Visitor", "New_Visitor"], n), "Weekend": rng.random(n) < 0.2,
    })
    return X, y
