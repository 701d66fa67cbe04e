"""The sessions job of ``shopml fit``: GRU4Rec's next item against popularity, Markov and
V-SKNN, and the purchase-intent model, on sessions split by their start time.

A session stands in for the user, so guest lines count here. Returns are left out. The
next-click sequence is a session's views and carts; a log with neither (a transaction log,
where a session is an invoice) uses its purchases, in file order within the invoice.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from shopml import progress
from shopml.jobs import JobContext, JobResult, Skip, pick_winner

__all__ = ["fit_sessions", "session_table", "with_sessions", "calibration_table"]

K = 20
SELECT = f"mrr@{K}"


def with_sessions(events: pl.DataFrame) -> pl.DataFrame:
    """Events with every row in a session: missing ids are filled by a 30-minute gap."""
    from shopml.data.sequences import sessionize

    if "session_id" not in events.columns or events["session_id"].null_count() > 0:
        events = sessionize(events)
    return events


def session_table(events: pl.DataFrame) -> pl.DataFrame:
    """One row per session with >= 2 events: ``session_id``, ``items``, ``types``, ``start``
    (``events`` must have a session id on every row: see :func:`with_sessions`)."""
    events = events.filter(pl.col("event_type") != "return")
    if events.filter(pl.col("event_type") != "purchase").height > 0:
        events = events.filter(pl.col("event_type") != "purchase")  # next-click: views and carts
    cols = [pl.col("item_id").alias("items"), pl.col("event_type").alias("types"),
            pl.col("timestamp").min().alias("start")]
    return (events.sort(["session_id", "timestamp"], maintain_order=True)
            .group_by("session_id", maintain_order=True).agg(cols)
            .filter(pl.col("items").list.len() >= 2).sort("start", maintain_order=True))  # ties: stable, not left to the sort


def _models(ctx: JobContext, budget: float | None) -> dict:
    from shopml.sessions import baselines as knn
    from shopml.sessions.estimator import SessionRecommender

    cfg = ctx.cfg
    # No item features here, by validation: on Online Retail (invoice lines as sessions, the
    # description words as features) GRU4Rec's validation MRR@20 was .1631 with them against
    # .1712 without (.1635 with no id dropout), with the same 10-minute budget.
    gru = SessionRecommender(dim=cfg.session_hidden, epochs=cfg.session_epochs, n_sample=cfg.session_sample,
                             seed=cfg.seed, max_seconds=budget, threads=cfg.threads)
    return {"gru4rec": gru, "pop": knn.PopularityRecommender(), "markov": knn.MarkovRecommender(),
            "vsknn": knn.VSKNNRecommender()}


def _round(table: pl.DataFrame, ctx: JobContext, cut, until, budget, log):
    """Fit on sessions that start before ``cut``; score the last item of those in ``[cut, until)``."""
    in_test = pl.col("start") >= cut
    if until is not None:
        in_test = in_test & (pl.col("start") < until)
    train = table.filter(pl.col("start") < cut)["items"].to_list()
    test = table.filter(in_test)["items"].to_list()
    if len(train) < 50 or len(test) < 10:
        raise Skip(f"{len(train)} training and {len(test)} scored sessions with >= 2 events before/after "
                   f"{cut.date()} (need 50 and 10)")
    prefixes, targets = [s[:-1] for s in test], [s[-1] for s in test]
    models, rows = _models(ctx, budget), []
    for name, model in models.items():
        t0 = time.perf_counter()
        with progress.stage(job="sessions", model=name, budget_s=budget if name == "gru4rec" else None):
            model.fit(train)
        fit_s = time.perf_counter() - t0
        res = model.evaluate(prefixes, targets, k=K)
        rows.append({"model": name, f"hr@{K}": res[f"hr@{K}"], f"mrr@{K}": res[f"mrr@{K}"],
                     "n_cases": res["n_cases"], "train_seconds": round(fit_s, 2)})
        log(f"[sessions] {name}: hr@20={res['hr@20']:.4f} mrr@20={res['mrr@20']:.4f}")
    return models, rows, prefixes


def fit_sessions(events: pl.DataFrame, ctx: JobContext) -> JobResult:
    """Select on the validation window, report on the test window, serve the winner's refit."""
    p, log = ctx.periods, ctx.log
    events = with_sessions(events)
    table = session_table(events)
    log(f"[sessions] {table.height} sessions with >= 2 events")
    models, vrows, _ = _round(table, ctx, p.valid_from, p.test_from, ctx.remaining(0.4), log)
    winner = pick_winner({r["model"]: r[SELECT] for r in vrows}, SELECT, neural="gru4rec")
    models, rows, prefixes = _round(table, ctx, p.test_from, None, ctx.remaining(0.6), log)
    for r in rows:
        r["winner"] = r["model"] == winner["model"]
    served = models[winner["model"]]
    gru = models["gru4rec"]
    result = JobResult(components={"sessions": served}, metrics=rows, winner=winner,
                       curves={"gru4rec": getattr(gru, "history_", [])})
    result.extras = {"validation": vrows, "select_on": f"{SELECT} on the validation window",
                     "n_sessions": table.height,
                     "samples": [{"session": " → ".join(map(str, q[-4:])), "next (top 3)": ", ".join(x["item_id"] for x in r[:3])}
                                 for q, r in zip(prefixes[:5], served.recommend(prefixes[:5], k=3))]}
    _fit_intent(events, table, ctx, result, log)
    return result


def _fit_intent(events, table, ctx: JobContext, result: JobResult, log) -> None:
    """Purchase intent: trained on sessions before the test window, AUC on those after it,
    against the base rate and, on simulated data, the true propensity (the ceiling)."""
    from shopml.intent.estimator import PurchaseIntentModel
    from shopml.evaluation.metrics import auc

    ev = events.filter(pl.col("session_id").is_not_null() & (pl.col("event_type") != "return"))
    bought = ev.group_by("session_id").agg((pl.col("event_type") == "purchase").any().alias("y"))
    if ev.filter(pl.col("event_type") != "purchase").height == 0 or bought["y"].n_unique() < 2:
        result.extras["intent"] = "skipped: the log has no sessions without a purchase (or none with one)"
        return
    test_ids = table.filter(pl.col("start") >= ctx.periods.test_from)["session_id"].implode()
    is_test = pl.col("session_id").is_in(test_ids)
    cfg = ctx.cfg
    model = PurchaseIntentModel(dim=cfg.session_hidden, epochs=cfg.session_epochs, seed=cfg.seed)
    t0 = time.perf_counter()
    with progress.stage(job="sessions", model="intent"):
        model.fit(ev.filter(~is_test))
    fit_s = time.perf_counter() - t0
    out = model.predict_proba(ev.filter(is_test))
    labels = dict(bought.iter_rows())
    y = np.array([labels[s] for s in out["session_id"]], dtype=float)
    p = np.asarray(out["p_purchase"], dtype=float)
    result.metrics.append({"model": "intent-gru", "auc": float(auc(y, p)), "train_seconds": round(fit_s, 2)})
    result.metrics.append({"model": "base-rate", "auc": 0.5})
    truth = ctx.extra.get("session_truth")
    if truth is not None:
        prop = dict(zip(truth["session_id"].to_list(), truth["propensity"].to_list()))
        if all(s in prop for s in out["session_id"]):
            oracle = float(auc(y, np.array([prop[s] for s in out["session_id"]])))
            result.metrics.append({"model": "true-propensity (ceiling)", "auc": oracle})
    result.components["intent"] = model
    result.extras["calibration"] = calibration_table(y, p)
    result.extras["purchase_rate"] = float(y.mean()) if len(y) else None
    log(f"[sessions] intent: auc={auc(y, p):.4f}")


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
