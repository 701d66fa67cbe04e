"""Purchase intent: P(session ends in a purchase) from its non-purchase events.

:class:`PurchaseIntentModel` runs :class:`WideDeepIntentNet`: a GRU over item, event type and
dwell time (the "deep" part) plus a "wide" logistic part over session totals that a GRU can only
approximate by counting (log views, carts, log mean minutes between views, log mean viewed
price) and a learned bias of the session's first category. Two heads train together: purchase
(binary cross-entropy) and next item (cross-entropy, an auxiliary task that shapes the item
embeddings). Purchase events are removed from the input, so the model sees what happened
before the decision; the last event's dwell time is set to 0 because it is still running when
the prediction is made. ``price`` and ``category`` columns are optional.

Example:
    >>> import polars as pl, datetime as dt
    >>> t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    >>> ev = pl.DataFrame({"session_id": ["s1"] * 3 + ["s2"] * 2,
    ...     "item_id": ["a", "a", "a", "b", "c"], "event_type": ["view", "cart", "purchase", "view", "view"],
    ...     "timestamp": [t0 + dt.timedelta(seconds=30 * i) for i in range(5)]})
    >>> x = session_tensors(ev, ItemIndex(["a", "b", "c"]))
    >>> x.labels.tolist(), x.types.tolist(), x.stats[:, 0].exp().sub(1).round().tolist()
    ([1.0, 0.0], [[1, 2], [1, 1]], [1.0, 2.0])
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from shopml.artifacts import read_model_dir, write_model_dir
from shopml.sessions.data import ItemIndex
from shopml.errors import DataError, NotFittedError
from shopml.intent.nets import EVENT_CODES, N_STATS, WideDeepIntentNet

__all__ = ["PurchaseIntentModel", "WideDeepIntentNet", "session_tensors", "SessionTensors", "simulator_intent_benchmark"]

KIND = "session-intent"


@dataclass
class SessionTensors:
    """Right-aligned per-session inputs (S, L), session totals ``stats`` (S, N_STATS), the first
    viewed category's index ``first_cat`` (S,) and labels (S,), sessions in ``session_ids`` order."""

    session_ids: list[str]
    items: torch.Tensor
    types: torch.Tensor
    dwell: torch.Tensor
    labels: torch.Tensor
    stats: torch.Tensor
    first_cat: torch.Tensor

    def inputs(self) -> tuple:
        return self.items, self.types, self.dwell, self.stats, self.first_cat


def session_tensors(events: pl.DataFrame, index: ItemIndex, max_len: int = 50,
                    categories: ItemIndex | None = None) -> SessionTensors:  # fmt: skip
    """Build padded inputs from canonical events with a ``session_id`` column (vectorized).

    ``categories`` indexes the first viewed event's ``category`` (0 = unknown or no column).
    """
    for col in ("session_id", "item_id", "event_type", "timestamp"):
        if col not in events.columns:
            raise DataError("missing required column for session intent", column=col)
    extra = [pl.col(c) if c in events.columns else pl.lit(None).alias(c) for c in ("price", "category")]
    ev = events.select("session_id", "item_id", "event_type", "timestamp", *extra).with_columns(
        pl.col("session_id").cast(pl.Utf8), pl.col("item_id").cast(pl.Utf8),
        pl.col("price").cast(pl.Float64), pl.col("category").cast(pl.Utf8),
    )
    # returns are neither browsing nor buying: they say nothing about this session's intent
    ev = ev.filter(pl.col("event_type") != "return").sort(["session_id", "timestamp"], maintain_order=True)
    labels = ev.group_by("session_id", maintain_order=True).agg((pl.col("event_type") == "purchase").any().alias("y"))
    x = ev.filter(pl.col("event_type") != "purchase").with_columns(
        (pl.col("timestamp").shift(-1).over("session_id") - pl.col("timestamp")).dt.total_seconds().fill_null(0).alias("dwell"),
        pl.int_range(pl.len()).reverse().over("session_id").alias("from_end"),
    )
    sids = labels["session_id"].to_list()
    row_of = {s: i for i, s in enumerate(sids)}
    stats, first_cat = _session_stats(x, row_of, categories)
    x = x.filter(pl.col("from_end") < max_len)
    rows = np.fromiter((row_of[s] for s in x["session_id"].to_list()), dtype=np.int64, count=x.height)
    L = max(1, int(x["from_end"].max() + 1) if x.height else 1)
    cols = L - 1 - x["from_end"].to_numpy()
    shape = (len(sids), L)
    items, types, dwell = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, np.float32)
    items[rows, cols] = index.encode(x["item_id"].to_list())
    types[rows, cols] = x["event_type"].replace_strict(EVENT_CODES, default=1).to_numpy()
    dwell[rows, cols] = x["dwell"].to_numpy()
    dwell[:, -1] = 0.0  # the last event's dwell is not known yet when predicting
    y = labels["y"].to_numpy().astype(np.float32)
    return SessionTensors(sids, *(torch.from_numpy(a) for a in (items, types, dwell, y, stats, first_cat)))


def _session_stats(x: pl.DataFrame, row_of: dict, categories: ItemIndex | None):
    """(S, N_STATS) totals over a session's non-purchase events: log1p(#views), min(#carts, 3),
    log1p(mean minutes between first and last view), log mean viewed price (0 when unknown)
    and a has-price flag; plus the first event's category index. Only events before the
    purchase decision enter (``x`` has no purchases)."""
    g = x.group_by("session_id").agg(
        n_views=(pl.col("event_type") != "cart").sum(),
        n_carts=(pl.col("event_type") == "cart").sum(),
        span=(pl.col("timestamp").filter(pl.col("event_type") != "cart").max()
              - pl.col("timestamp").filter(pl.col("event_type") != "cart").min()).dt.total_seconds(fractional=True),
        price=pl.col("price").filter(pl.col("event_type") != "cart").mean(),
        cat=pl.col("category").first(),
    )  # fmt: skip
    n_views = g["n_views"].to_numpy().astype(np.float64)
    span = g["span"].fill_null(0.0).to_numpy()
    mean_min = np.where(n_views > 1, span / np.maximum(n_views - 1, 1) / 60.0, 0.0)
    price = g["price"].to_numpy().astype(np.float64)
    has_price = np.isfinite(price) & (price > 0)
    cols = [np.log1p(n_views), np.minimum(g["n_carts"].to_numpy(), 3), np.log1p(np.maximum(mean_min, 0.0)),
            np.where(has_price, np.log(np.where(has_price, price, 1.0)), 0.0), has_price]  # fmt: skip
    stats = np.zeros((len(row_of), N_STATS), np.float32)
    first_cat = np.zeros(len(row_of), np.int64)
    rows = np.fromiter((row_of[s] for s in g["session_id"].to_list()), dtype=np.int64, count=g.height)
    stats[rows] = np.stack(cols, axis=1)
    if categories is not None:
        first_cat[rows] = categories.encode([c if c is not None else "" for c in g["cat"].to_list()])
    return stats, first_cat


class PurchaseIntentModel:
    """Session purchase-intent classifier (second head on a session GRU).

    Args:
        dim: embedding and GRU size. epochs, lr, batch_size: training (AdamW, shopml.training).
        next_item_weight: weight of the auxiliary next-item loss.
    """

    def __init__(self, *, dim: int = 64, epochs: int = 30, lr: float = 3e-3, batch_size: int = 256,
                 next_item_weight: float = 0.2, valid_fraction: float = 0.1, patience: int = 3, seed: int = 0):  # fmt: skip
        self.dim, self.epochs, self.lr, self.batch_size = dim, epochs, lr, batch_size
        self.next_item_weight, self.valid_fraction, self.patience, self.seed = next_item_weight, valid_fraction, patience, seed

    def get_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def fit(self, events: pl.DataFrame) -> "PurchaseIntentModel":
        """Fit on canonical events (session_id, item_id, event_type, timestamp).

        ``valid_fraction`` of the sessions are held out to early-stop on their AUC (the
        intent head overfits a few epochs after its best); the best epoch's weights are kept.
        """
        from shopml.training import IndexBatches, TrainConfig, train

        inputs = events.filter(~pl.col("event_type").is_in(["purchase", "return"]))
        self.items_ = ItemIndex(inputs["item_id"].cast(pl.Utf8).unique(maintain_order=True).to_list())
        cats = inputs["category"].drop_nulls().cast(pl.Utf8).unique(maintain_order=True) if "category" in inputs.columns else []
        self.categories_ = ItemIndex(list(cats))
        x = session_tensors(events, self.items_, categories=self.categories_)
        if x.labels.numel() == 0:
            raise DataError("no sessions to train on")
        self.base_rate_ = float(x.labels.mean())
        torch.manual_seed(self.seed)  # the init must not depend on what ran before
        self.net_ = self._net()
        perm = torch.randperm(len(x.labels), generator=torch.Generator().manual_seed(self.seed))
        n_valid = int(self.valid_fraction * len(perm)) if len(perm) >= 50 else 0
        va, tr = perm[:n_valid], perm[n_valid:]
        self.net_.stat_mean.copy_(x.stats[tr].mean(0))
        # A column that is constant in training (e.g. "price known" when every event has a
        # price) keeps unit scale: dividing by a clamped ~0 spread would turn an unseen value
        # at request time into a logit of thousands (P = 1.0 exactly).
        std = x.stats[tr].std(0).nan_to_num(0.0)
        self.net_.stat_std.copy_(torch.where(std < 1e-6, torch.ones_like(std), std.clamp(min=1e-3)))
        tensors = [t[tr] for t in (*x.inputs(), x.labels)]
        validate = self._validator([t[va] for t in (*x.inputs(), x.labels)]) if n_valid else None
        cfg = TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=self.seed,
                          progress=False, patience=self.patience, monitor="auc")  # fmt: skip
        t0 = time.perf_counter()
        self.train_result_ = train(self.net_, self._loss, IndexBatches(*tensors), validate=validate, config=cfg)
        self.train_seconds_ = time.perf_counter() - t0
        self.net_.eval()
        return self

    @staticmethod
    def _validator(valid):
        from shopml.evaluation.metrics import auc

        *inputs, y = valid

        def validate(net) -> dict:
            return {"auc": float(auc(y.numpy(), net(*inputs)[1].numpy()))}

        return validate

    def _loss(self, net, batch) -> torch.Tensor:
        *inputs, y = batch
        items = inputs[0]
        states, logit = net(*inputs)
        loss = F.binary_cross_entropy_with_logits(logit, y)
        # next-item head: logits only at positions whose next event is a real item
        has_next = (items[:, :-1] > 0) & (items[:, 1:] > 0)
        if self.next_item_weight > 0 and has_next.any():
            logits = net.next_item_logits(states[:, :-1][has_next])
            loss = loss + self.next_item_weight * F.cross_entropy(logits, items[:, 1:][has_next])
        return loss

    def _net(self) -> WideDeepIntentNet:
        return WideDeepIntentNet(self.items_.n_items, self.categories_.n_items, dim=self.dim)

    def predict_proba(self, events: pl.DataFrame) -> dict:
        """``{"session_id": [...], "p_purchase": [...], "fallback": [None | "base_rate"]}``.

        A session without a known non-purchase event gets the training base rate, flagged.
        """
        if not hasattr(self, "net_"):
            raise NotFittedError("PurchaseIntentModel is not fitted; call fit() first")
        x = session_tensors(events, self.items_, categories=self.categories_)
        with torch.no_grad():
            p = torch.sigmoid(self.net_(*x.inputs())[1]).numpy() if len(x.session_ids) else np.zeros(0)
        empty = ((x.types > 0).sum(1) == 0).numpy() | ~np.isfinite(p)
        p = np.where(empty, self.base_rate_, p)
        return {"session_id": x.session_ids, "p_purchase": p.tolist(), "fallback": ["base_rate" if e else None for e in empty]}

    def save(self, path) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError("PurchaseIntentModel is not fitted; call fit() first")
        meta = {"items": self.items_.ids, "categories": self.categories_.ids, "base_rate": self.base_rate_}
        write_model_dir(path, kind=KIND, params=self.get_params(), tensors=self.net_.state_dict(), meta=meta)

    @classmethod
    def load(cls, path) -> "PurchaseIntentModel":
        md = read_model_dir(Path(path), kind=KIND)
        self = cls(**md.params)
        self.items_, self.base_rate_ = ItemIndex(md.meta["items"]), md.meta["base_rate"]
        self.categories_ = ItemIndex(md.meta["categories"])
        self.net_ = self._net()
        self.net_.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in md.tensors.items()})
        self.net_.eval()
        return self


def simulator_intent_benchmark(n_users: int = 5000, seed: int = 0, **params) -> dict:
    """Fit on 70% of the simulator's sessions; on the other 30% compare the model's AUC with
    the AUC of the true propensity (the best any model can do on average).

    Returns ``{"auc", "oracle_auc", "train_seconds", "n_train", "n_test"}``.
    """
    from shopml.data.simulate import simulate_shop
    from shopml.evaluation.metrics import auc

    shop = simulate_shop(n_users=n_users, seed=seed)
    truth = shop.truth.sessions
    prop = dict(zip(truth["session_id"].to_list(), truth["propensity"].to_list()))
    ev = shop.events.with_columns(pl.col("session_id").cast(pl.Utf8))
    sids = np.array(sorted(ev["session_id"].unique().to_list()))
    rng = np.random.default_rng(seed)
    test_ids = set(rng.choice(sids, size=int(0.3 * len(sids)), replace=False).tolist())
    is_test = pl.col("session_id").is_in(list(test_ids))
    model = PurchaseIntentModel(**params).fit(ev.filter(~is_test))
    out = model.predict_proba(ev.filter(is_test))
    test = ev.filter(is_test).group_by("session_id").agg((pl.col("event_type") == "purchase").any().alias("y"))
    y = dict(zip(test["session_id"].to_list(), test["y"].to_list()))
    ys = np.array([y[s] for s in out["session_id"]], dtype=float)
    return {
        "auc": float(auc(ys, np.array(out["p_purchase"]))),
        "oracle_auc": float(auc(ys, np.array([prop[s] for s in out["session_id"]]))),
        "train_seconds": model.train_seconds_,
        "n_train": len(sids) - len(test_ids),
        "n_test": len(test_ids),
    }
