"""Fit every job an event log supports, evaluate against baselines, save one run folder.

:func:`fit_all` decides per job from the data itself:

* **recommend** needs users with at least 3 interactions (leave-one-out needs a
  validation and a test item): SASRec vs most-popular, item-KNN and Markov baselines;
* **sessions** needs sessions (``session_id``, or built with a 30-minute gap) with at
  least 2 events: GRU4Rec next click vs popularity, Markov and V-SKNN, plus the purchase
  intent head when the session module provides one;
* **customers** needs purchases spread over enough weeks: customer RNN vs BG/NBD;
* **pricing** needs a ``price`` column whose values vary within items.

A job the data does not support, or whose module is not installed, is skipped with the
reason; the run's manifest lists it. Metrics go into the manifest, report material
(curves, samples) into ``extras.json``.

Example:
    >>> from shopml.data.simulate import simulate_shop           # doctest: +SKIP
    >>> shop = simulate_shop(n_users=200, n_items=50)             # doctest: +SKIP
    >>> res = fit_all(shop.events, "runs/tiny", config=FitConfig.preset("tiny"))  # doctest: +SKIP
    >>> sorted(res.metrics)                                        # doctest: +SKIP
    ['customers', 'pricing', 'recommend', 'sessions']
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from shopml.errors import DataError
from shopml.runs import data_fingerprint, save_run

__all__ = ["FitConfig", "FitResult", "fit_all", "JOBS"]

JOBS = ("recommend", "sessions", "customers", "pricing")


@dataclass(frozen=True)
class FitConfig:
    """Sizes and budgets of the models ``fit_all`` trains (small typed config, named presets)."""

    rec_dim: int = 64
    rec_max_len: int = 50
    rec_epochs: int = 200
    rec_patience: int = 10
    session_hidden: int = 100
    session_epochs: int = 10
    session_sample: int = 2048
    customer_epochs: int = 40
    customer_samples: int = 200
    pricing_epochs: int = 200
    threads: int = 2
    seed: int = 0
    progress: bool = True
    n_samples: int = 3

    @classmethod
    def preset(cls, name: str) -> "FitConfig":
        """``full`` (the defaults), ``demo`` (the whole demo in well under 3 minutes on 2
        cores) or ``tiny`` (tests)."""
        presets = {
            "full": cls(),
            "demo": cls(rec_dim=48, rec_epochs=30, rec_patience=4, session_hidden=64, session_epochs=5,
                        session_sample=256, customer_epochs=15, customer_samples=64, pricing_epochs=100),
            "tiny": cls(rec_dim=16, rec_max_len=20, rec_epochs=3, rec_patience=2, session_hidden=16,
                        session_epochs=1, session_sample=32, customer_epochs=2, customer_samples=8,
                        pricing_epochs=10, progress=False),
        }
        if name not in presets:
            raise DataError(f"unknown preset {name!r}; choose from {sorted(presets)}")
        return presets[name]


class Skip(Exception):
    """A job the data (or the installation) does not support; the message says why."""


@dataclass
class JobResult:
    components: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, list] = field(default_factory=dict)


@dataclass
class FitResult:
    """What :func:`fit_all` did: the run folder, metrics per job, skipped jobs and timings."""

    path: Path
    metrics: dict[str, list[dict]]
    skipped: list[dict]
    seconds: dict[str, float]
    extras: dict[str, Any] = field(default_factory=dict)


def fit_all(events: pl.DataFrame, out, *, config: FitConfig | None = None, jobs=JOBS,
            quality: dict | None = None, price_panel: pl.DataFrame | None = None, price_truth=None,
            session_truth: pl.DataFrame | None = None, log: Callable[[str], None] | None = None) -> FitResult:
    """Train every job in ``jobs`` the (canonical, pseudonymized) ``events`` support, then
    save the run to ``out`` atomically. ``quality`` is the data-quality report to embed.

    Pricing uses ``price_panel`` (item × store × week rows: price, log_units, optional
    controls, in the layout of :func:`shopml.data.market.simulate_market`) when given, else
    the weekly purchase panel implied by the events; ``price_truth`` (true elasticities)
    adds the estimation error to the metrics; ``session_truth`` (session_id, propensity)
    adds the true propensity's AUC beside the intent model's."""
    import torch

    cfg = config or FitConfig()
    log = log or (lambda msg: None)
    torch.set_num_threads(cfg.threads)
    fitters = {"recommend": _fit_recommend, "sessions": _fit_sessions,
               "customers": _fit_customers, "pricing": _fit_pricing}
    components, metrics, extras, curves, skipped, seconds = {}, {}, {}, {}, [], {}
    for job in jobs:
        t0 = time.perf_counter()
        try:
            extra = {"pricing": {"panel": price_panel, "truth": price_truth},
                     "sessions": {"truth": session_truth}}.get(job, {})
            res = fitters[job](events, cfg, log, **extra)
        except Skip as why:
            skipped.append({"job": job, "reason": str(why)})
            log(f"[{job}] skipped: {why}")
            continue
        seconds[job] = round(time.perf_counter() - t0, 1)
        log(f"[{job}] done in {seconds[job]} s")
        components.update(res.components)
        metrics[job], extras[job] = res.metrics, res.extras
        curves.update(res.curves)
    extras.update(quality=quality or _quality(events), learning_curves=curves, fit_seconds=seconds)
    rec = components.get("recommend")
    save_run(out, components=components, params={"config": cfg.__dict__, "jobs": list(jobs)},
             metrics=metrics, data=data_fingerprint(events), skipped=skipped, extras=extras,
             items=list(getattr(rec, "item_ids_", [])), users=list(getattr(rec, "user_ids_", [])))
    return FitResult(Path(out), metrics, skipped, seconds, extras)


def _quality(events: pl.DataFrame) -> dict:
    from shopml.data.quality import quality_report
    from shopml.data.validate import validate_events

    return quality_report(events, validate_events(events))


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Skip(f"{module} is not available ({e})") from None


# ---------------------------------------------------------------------- recommend
def _fit_recommend(events: pl.DataFrame, cfg: FitConfig, log) -> JobResult:
    seq_mod = _need("shopml.data.sequences")
    models = _need("shopml.recommend.models")
    base = _need("shopml.recommend.baselines")
    protocols = _need("shopml.evaluation.protocols")
    seqs = seq_mod.build_sequences(events)
    train, valid, test = seq_mod.leave_one_out(seqs)
    n_eval = int((test > 0).sum())
    if n_eval < 20:
        raise Skip(f"only {n_eval} users have >= 3 interactions (need 20 for leave-one-out evaluation)")
    log(f"[recommend] {seqs.n_users} users, {seqs.n_items} items, {len(seqs.items)} interactions")
    sasrec = models.SASRecRecommender(dim=cfg.rec_dim, max_len=cfg.rec_max_len, epochs=cfg.rec_epochs,
                                      patience=cfg.rec_patience, seed=cfg.seed, threads=cfg.threads,
                                      progress=cfg.progress)
    candidates = {"sasrec": sasrec, "pop": base.MostPopular(), "markov": base.Markov(), "itemknn": base.ItemKNN()}
    test_hist = train.append(valid)
    rows = []
    for name, model in candidates.items():
        t0 = time.perf_counter()
        model.fit(train, valid if name == "sasrec" else None)
        fit_s = time.perf_counter() - t0
        res = protocols.evaluate_model(model, test_hist, test, ks=(10, 20), protocols=("A",))["A"]
        rows.append({"model": name, "protocol": "A", **{k: v for k, v in res.items() if k != "n_users"},
                     "train_seconds": round(fit_s, 2)})
        log(f"[recommend] {name}: ndcg@10={res['ndcg@10']:.4f} hr@10={res['hr@10']:.4f}")
    for model in (sasrec, candidates["pop"]):
        _serve_full_histories(model, seqs)
    samples = _recommend_samples(sasrec, cfg.n_samples)
    info = getattr(sasrec, "fit_info_", {})
    return JobResult(
        components={"recommend": sasrec, "recommend_pop": candidates["pop"]},
        metrics=rows,
        extras={"model": "sasrec", "samples": samples,
                "explanation": "'driven by' = drop in the item's score when that history item is removed "
                               "(occlusion).", "best_epoch": info.get("best_epoch")},
        curves={"sasrec": info.get("history", [])},
    )


def _serve_full_histories(model, seqs) -> None:
    """Serve known users from their whole history: the model was fitted on the
    leave-one-out training part and evaluation is done; at serving time the latest items
    matter most (same item map by construction)."""
    model.set_histories(seqs)


def _recommend_samples(model, n: int) -> list[dict]:
    lengths = np.diff(model.hist_indptr_)
    users = np.argsort(-lengths, kind="stable")[: max(n * 5, n)][::5][:n]
    out = []
    for u in users.tolist():
        user = model.user_ids_[u]
        hist = model.hist_items_[model.hist_indptr_[u]: model.hist_indptr_[u + 1]]
        recs = model.recommend([user], k=5, explain=True)[0]
        out.append({"user": user, "history": [model.item_ids_[i - 1] for i in hist.tolist()],
                    "recommendations": [{**r, "because": r.get("because", [])[:3]} for r in recs]})
    return out


# ---------------------------------------------------------------------- sessions
def _with_sessions(events: pl.DataFrame) -> pl.DataFrame:
    if "session_id" not in events.columns or events["session_id"].null_count() > 0:
        events = _need("shopml.data.sequences").sessionize(events)  # fills missing ids by a 30-min gap
    return events


def _session_lists(events: pl.DataFrame) -> pl.DataFrame:
    cols = [pl.col("item_id").alias("items"), pl.col("event_type").alias("types"),
            pl.col("timestamp").min().alias("start")]
    events = events.filter(pl.col("event_type") != "purchase")  # next-click sequences: views and carts
    return (events.sort(["session_id", "timestamp"], maintain_order=True)
            .group_by("session_id", maintain_order=True).agg(cols)
            .filter(pl.col("items").list.len() >= 2).sort("start"))


def _fit_sessions(events: pl.DataFrame, cfg: FitConfig, log, truth=None) -> JobResult:
    sessions_mod = _need("shopml.behaviour.sessions")
    knn = _need("shopml.behaviour.knn")
    events = _with_sessions(events)
    table = _session_lists(events)
    if table.height < 50:
        raise Skip(f"only {table.height} sessions with >= 2 events (need 50)")
    cut = int(table.height * 0.8)
    train = table["items"].to_list()[:cut]
    test = table["items"].to_list()[cut:]
    prefixes = [s[:-1] for s in test]
    targets = [s[-1] for s in test]
    gru = sessions_mod.SessionRecommender(hidden=cfg.session_hidden, epochs=cfg.session_epochs,
                                          n_sample=cfg.session_sample, seed=cfg.seed)
    rows = []
    for name, model in {"gru4rec": gru, "pop": knn.PopularityRecommender(), "markov": knn.MarkovRecommender(),
                        "vsknn": knn.VSKNNRecommender()}.items():
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        res = model.evaluate(prefixes, targets, k=20)
        rows.append({"model": name, "recall@20": res["recall@20"], "mrr@20": res["mrr@20"],
                     "train_seconds": round(fit_s, 2)})
        log(f"[sessions] {name}: recall@20={res['recall@20']:.4f} mrr@20={res['mrr@20']:.4f}")
    result = JobResult(components={"sessions": gru}, metrics=rows,
                       curves={"gru4rec": history_rows(getattr(gru, "history_", None))})
    result.extras = {"n_train_sessions": len(train), "n_test_sessions": len(test),
                     "samples": [{"session": " → ".join(p[-4:]), "next (top 3)": ", ".join(r["items"][:3])}
                                 for p, r in zip(prefixes[:5], gru.recommend(prefixes[:5], k=3))]}
    _fit_intent(events, table, cut, cfg, result, log, truth=truth)
    return result


def _fit_intent(events: pl.DataFrame, table: pl.DataFrame, cut: int, cfg: FitConfig, result: JobResult, log,
                truth=None) -> None:
    """Purchase intent on the same session split; AUC vs the constant base rate and, on
    simulated data, vs the true propensity (the ceiling)."""
    try:
        from shopml.behaviour.session_intent import PurchaseIntentModel
    except ImportError as e:
        result.extras["intent"] = f"not available ({e})"
        return
    from shopml.evaluation.metrics import auc

    ev = events.filter(pl.col("session_id").is_not_null()).with_columns(pl.col("session_id").cast(pl.Utf8))
    test_ids = table["session_id"].cast(pl.Utf8)[cut:].implode()
    is_test = pl.col("session_id").is_in(test_ids)
    model = PurchaseIntentModel(dim=cfg.session_hidden, epochs=cfg.session_epochs, seed=cfg.seed)
    t0 = time.perf_counter()
    model.fit(ev.filter(~is_test))
    fit_s = time.perf_counter() - t0
    out = model.predict_proba(ev.filter(is_test))
    bought = dict(ev.filter(is_test).group_by("session_id")
                  .agg((pl.col("event_type") == "purchase").any()).iter_rows())
    y = np.array([bought[s] for s in out["session_id"]], dtype=float)
    p = np.asarray(out["p_purchase"], dtype=float)
    result.metrics.append({"model": "intent-gru", "auc": float(auc(y, p)), "train_seconds": round(fit_s, 2)})
    result.metrics.append({"model": "base-rate", "auc": 0.5})
    if truth is not None:
        prop = dict(zip(truth["session_id"].to_list(), truth["propensity"].to_list()))
        if all(s in prop for s in out["session_id"]):
            oracle = float(auc(y, np.array([prop[s] for s in out["session_id"]])))
            result.metrics.append({"model": "true-propensity (ceiling)", "auc": oracle})
    result.components["intent"] = model
    result.extras["calibration"] = calibration_table(y, p)
    result.extras["purchase_rate"] = float(y.mean()) if len(y) else None
    log(f"[sessions] intent: auc={result.metrics[-3 if truth is not None else -2]['auc']:.4f}")


def history_rows(history) -> list[dict]:
    """Training history as one dict per epoch, from either a list of rows or a dict of
    per-epoch lists (``{"loss": [...], "seconds": [...]}``).

    >>> history_rows({"loss": [2.0, 1.0]})
    [{'epoch': 1, 'loss': 2.0}, {'epoch': 2, 'loss': 1.0}]
    """
    if not history:
        return []
    if isinstance(history, dict):
        n = max(len(v) for v in history.values() if isinstance(v, list))
        return [{"epoch": i + 1, **{k: v[i] for k, v in history.items() if isinstance(v, list) and i < len(v)}}
                for i in range(n)]
    return [dict(r) for r in history if isinstance(r, dict)]


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict:
    """Mean predicted vs observed rate per probability decile bin (non-empty bins only).

    >>> calibration_table(np.array([0, 1, 1, 0.]), np.array([.1, .9, .8, .2]), bins=2)["count"]
    [2, 2]
    """
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = {"predicted": [], "observed": [], "count": []}
    for b in range(bins):
        m = which == b
        if m.any():
            out["predicted"].append(float(p[m].mean()))
            out["observed"].append(float(y[m].mean()))
            out["count"].append(int(m.sum()))
    return out


# ---------------------------------------------------------------------- customers
def _fit_customers(events: pl.DataFrame, cfg: FitConfig, log) -> JobResult:
    customers = _need("shopml.behaviour.customers")
    buys = events.filter(pl.col("event_type") == "purchase")
    if buys.height == 0:
        raise Skip("no purchase events")
    tx = buys.select(pl.col("user_id").alias("customer_id"), pl.col("timestamp").dt.date().alias("date"),
                     (pl.col("price") * pl.col("quantity").fill_null(1.0) if "price" in buys.columns
                      else pl.lit(1.0)).alias("dollars"))
    first, last = tx["date"].min(), tx["date"].max()
    weeks = (last - first).days // 7
    if weeks < 6 or tx["customer_id"].n_unique() < 30:
        raise Skip(f"purchases span {weeks} weeks for {tx['customer_id'].n_unique()} customers "
                   "(need >= 6 weeks and >= 30 customers)")
    cal_weeks = max(int(weeks * 0.6), 2)
    cal_end = first + __import__("datetime").timedelta(days=7 * cal_weeks - 1)
    horizon = weeks - cal_weeks
    model = customers.CustomerForecaster(epochs=cfg.customer_epochs, n_samples=cfg.customer_samples,
                                         seed=cfg.seed).fit(tx.filter(pl.col("date") <= cal_end), start=first)
    return _customer_result(model, tx, first, cal_weeks, horizon, log)


def _customer_result(model, tx: pl.DataFrame, first, cal_weeks: int, horizon: int, log) -> JobResult:
    fc = model.forecast(horizon, customers=model.customers_)
    days = tx.select(pl.col("customer_id"), ((pl.col("date") - first).dt.total_days()).alias("day")).unique()
    hold = days.filter(pl.col("day") >= 7 * cal_weeks)
    actual = dict(hold.group_by("customer_id").len().iter_rows())
    y = np.array([actual.get(c, 0) for c in model.customers_], dtype=float)
    mae_rnn = float(np.abs(fc["expected_purchases"].to_numpy() - y).mean())
    mae_bg = float(np.abs(fc["bgnbd_expected"].to_numpy() - y).mean())
    week_of = (hold["day"].to_numpy() // 7 - cal_weeks).astype(int)
    known = np.isin(hold["customer_id"].to_numpy(), np.asarray(model.customers_))
    actual_cum = np.cumsum(np.bincount(week_of[known], minlength=horizon)[:horizon]).astype(float)
    rnn_cum = np.cumsum(model.simulate(horizon)[0].sum(0))
    bg = model.bgnbd_
    bg_cum = np.array([bg.conditional_expected_purchases(float(t), **model.rfm_).sum() for t in range(1, horizon + 1)])
    log(f"[customers] holdout MAE rnn={mae_rnn:.4f} bgnbd={mae_bg:.4f}")
    rows = [{"model": "rnn", "mae": mae_rnn, "curve_error": _curve_err(rnn_cum, actual_cum)},
            {"model": "bgnbd", "mae": mae_bg, "curve_error": _curve_err(bg_cum, actual_cum)}]
    extras = {"weeks": list(range(cal_weeks + 1, cal_weeks + horizon + 1)), "calibration_end": cal_weeks,
              "series": {"actual": actual_cum.tolist(), "rnn": rnn_cum.tolist(), "bgnbd": bg_cum.tolist()},
              "n_customers": len(model.customers_), "holdout_weeks": horizon}
    return JobResult(components={"customers": model}, metrics=rows, extras=extras)


def _curve_err(pred: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute gap between cumulative curves, relative to the final actual total."""
    return float(np.abs(pred - actual).mean() / max(actual[-1], 1.0))


# ---------------------------------------------------------------------- pricing
_PANEL_NUMERIC = ["promo", "log_comp", "income", "week", "w1", "w2", "w3"]


def _panel_from_events(events: pl.DataFrame) -> pl.DataFrame:
    """Weekly purchases per item at the week's mean price (one 'store'): the price panel an
    event log implies. Items need >= 3 distinct weekly prices to identify a demand slope."""
    if "price" not in events.columns:
        raise Skip("no price column")
    buys = events.filter((pl.col("event_type") == "purchase") & pl.col("price").is_not_null())
    qty = pl.col("quantity").fill_null(1.0) if "quantity" in buys.columns else pl.lit(1.0)
    start = events["timestamp"].min()
    panel = (buys.with_columns(((pl.col("timestamp") - start).dt.total_days() // 7).alias("week"), qty.alias("q"))
             .group_by("item_id", "week").agg(pl.col("price").mean(), pl.col("q").sum().alias("units"))
             .rename({"item_id": "item"}).with_columns(pl.lit("all").alias("store"),
                                                       pl.col("units").log().alias("log_units")))
    varying = panel.group_by("item").agg(pl.col("price").round(2).n_unique().alias("n")).filter(pl.col("n") >= 3)
    if varying.height < 3:
        raise Skip(f"prices vary (>= 3 distinct weekly prices) for only {varying.height} items (need 3)")
    return panel.filter(pl.col("item").is_in(varying["item"].implode()))


def _fit_pricing(events: pl.DataFrame, cfg: FitConfig, log, panel=None, truth=None) -> JobResult:
    _need("shopml.pricing.demand")
    from shopml.pricing.demand import NeuralDemand
    from shopml.service.price_book import PriceBook

    data = _panel_from_events(events) if panel is None else panel
    data = data.with_columns(pl.col("item").cast(pl.Utf8), pl.col("store").cast(pl.Utf8))
    if "comp_price" in data.columns:
        data = data.with_columns(pl.col("comp_price").log().alias("log_comp"))
    numeric = [c for c in _PANEL_NUMERIC if c in data.columns]
    log(f"[pricing] panel of {data.height} rows, {data['item'].n_unique()} items; controls {numeric}")
    t0 = time.perf_counter()
    demand = NeuralDemand(categorical=["item", "store"], numeric=numeric, n_members=3, epochs=cfg.pricing_epochs,
                          batch_size=512, seed=cfg.seed, threads=cfg.threads).fit(data)
    fit_s = time.perf_counter() - t0
    book = PriceBook().fit(demand, data.drop([c for c in data.columns if c.startswith("_")]))
    rows = _elasticity_rows(data, demand, numeric, truth, fit_s, log)
    items = [_pricing_item(book, i) for i in book.item_ids_[: cfg.n_samples]]
    return JobResult(components={"pricing": book}, metrics=rows,
                     extras={"items": items, "elasticities": rows},
                     curves={"demand": (demand.histories_ or [[]])[0]})


def _elasticity_rows(data, demand, numeric, truth, fit_s, log) -> list[dict]:
    """Own-price elasticity by method: naive log-log, DML / IV when their columns exist,
    and the neural model's average; the error against the truth when it is known."""
    from shopml.pricing.elasticity import estimate_elasticity

    true_mean = None if truth is None else float(np.mean(truth))
    rows = []
    specs = [("naive", dict(fixed_effects=["item"]))]
    if {"w1", "w2", "w3"} <= set(data.columns):
        specs.append(("dml", dict(controls=["item", "store", *numeric], n_estimators=100, threads=2)))
    if "cost_shifter" in data.columns:
        specs.append(("iv", dict(instrument="cost_shifter", fixed_effects=["item"])))
    for method, kw in specs:
        res = estimate_elasticity(data, method, **kw)
        rows.append({"model": method, "elasticity": float(res.estimate), "se": float(res.se)})
    avg = demand.average_elasticity(data)[0]
    rows.append({"model": "neural", "elasticity": avg["elasticity"], "se": avg["se"], "train_seconds": round(fit_s, 2)})
    for r in rows:
        if true_mean is not None:
            r["true_elasticity"], r["elasticity_error"] = true_mean, abs(r["elasticity"] - true_mean)
        log(f"[pricing] {r['model']}: elasticity {r['elasticity']:.3f} (se {r['se']:.3f})")
    return rows


def _pricing_item(book, item_id: str) -> dict:
    """Curves and the proposed price (±20% of current, >= 5% margin) for the report."""
    curve = book.curve(item_id, points=40)
    prop = book.optimize_item(item_id, max_change=0.2, min_margin=0.05)
    return {**curve, "chosen_price": prop["price"], "expected_units": prop["expected_units"],
            "profit_at_chosen": prop["profit"], "binding": prop["binding"], "unit_cost": prop["unit_cost"]}


def with_config(cfg: FitConfig, **changes) -> FitConfig:
    """A copy of ``cfg`` with some fields changed (e.g. ``progress=False``)."""
    return replace(cfg, **changes)
