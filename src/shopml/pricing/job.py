"""The pricing job of ``shopml fit``: neural (monotone) demand against log-linear demand on
the weeks after the cut, elasticities with intervals, and the price book the run serves.

The panel is item x week: units are the week's purchases *net of returns* (guests included:
their purchases are demand too), the price their quantity-weighted mean unit price. Rows
without a positive price, and weeks whose units net to zero or less, are left out. The cost
is bounded by keeping the ``max_items`` items with the most revenue.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from shopml import progress
from shopml.jobs import JobContext, JobResult, Skip, pick_winner

__all__ = ["fit_pricing", "weekly_panel"]

_NUMERIC = ["promo", "log_comp", "income", "w1", "w2", "w3"]


def weekly_panel(events: pl.DataFrame, start, max_items: int = 200) -> pl.DataFrame:
    """``item, store, week, price, units, log_units, t`` (t: the week's start time) from events."""
    if "price" not in events.columns:
        raise Skip("no price column")
    ev = events.filter(pl.col("event_type").is_in(["purchase", "return"]) & (pl.col("price") > 0))
    q = pl.col("quantity").fill_null(1.0) if "quantity" in ev.columns else pl.lit(1.0)
    q = pl.when((pl.col("event_type") == "return") & (q > 0)).then(-q).otherwise(q)
    ev = ev.with_columns(q.alias("q"), ((pl.col("timestamp") - start).dt.total_days() // 7).alias("week"))
    pos = pl.col("q") > 0
    panel = (ev.group_by("item_id", "week")
             .agg((pl.col("price") * pl.col("q")).filter(pos).sum().alias("_pq"),
                  pl.col("q").filter(pos).sum().alias("_q"), pl.col("q").sum().alias("units"),
                  pl.col("timestamp").min().alias("t"))
             .filter((pl.col("units") > 0) & (pl.col("_q") > 0))
             .with_columns((pl.col("_pq") / pl.col("_q")).alias("price"))
             .rename({"item_id": "item"}).drop("_pq", "_q"))
    top = (panel.group_by("item").agg((pl.col("price") * pl.col("units")).sum().alias("rev"),
                                      pl.col("price").round(2).n_unique().alias("n_prices"))
           .filter(pl.col("n_prices") >= 3).sort("rev", descending=True).head(max_items))
    if top.height < 3:
        raise Skip(f"prices vary (>= 3 distinct weekly prices) for only {top.height} items (need 3)")
    return (panel.filter(pl.col("item").is_in(top["item"].implode()))
            .with_columns(pl.lit("all").alias("store"), pl.col("units").log().alias("log_units"),
                          pl.col("item").cast(pl.Utf8)).sort("item", "week"))


def _loglinear_predict(train: pl.DataFrame, test: pl.DataFrame, elasticity: float) -> np.ndarray:
    """Units of constant-elasticity demand with per-item intercepts fitted on ``train``."""
    a = train.group_by("item").agg((pl.col("log_units") - elasticity * pl.col("price").log()).mean().alias("a"))
    resid = train.join(a, on="item").select(pl.col("log_units") - pl.col("a") - elasticity * pl.col("price").log())
    s2 = float(resid.to_series().var() or 0.0)
    t = test.join(a, on="item", how="left").with_columns(pl.col("a").fill_null(a["a"].mean()))
    return np.exp(t["a"].to_numpy() + elasticity * np.log(t["price"].to_numpy()) + 0.5 * s2)


def _round(panel: pl.DataFrame, ctx: JobContext, is_train: pl.Expr, is_test: pl.Expr, budget, log):
    from shopml.evaluation.metrics import wape
    from shopml.pricing.demand import NeuralDemand
    from shopml.pricing.elasticity import estimate_elasticity

    train, test = panel.filter(is_train), panel.filter(is_test)
    test = test.filter(pl.col("item").is_in(train["item"].unique().implode()))
    if train.height < 20 or test.height < 3:
        raise Skip(f"{train.height} training and {test.height} test item-weeks with prices (need 20 and 3)")
    numeric = [c for c in _NUMERIC if c in panel.columns]
    cfg, t0 = ctx.cfg, time.perf_counter()
    with progress.stage(job="pricing", model="neural", budget_s=budget):
        demand = NeuralDemand(categorical=["item", "store"], numeric=numeric, n_members=3, epochs=cfg.pricing_epochs,
                              batch_size=512, seed=cfg.seed, threads=cfg.threads, max_seconds=budget).fit(train)
    fit_s = time.perf_counter() - t0
    naive = estimate_elasticity(train, "naive", fixed_effects=["item"])
    y = test["units"].to_numpy()
    rows = [{"model": "neural", "wape": wape(y, demand.predict(test)), "train_seconds": round(fit_s, 2)},
            {"model": "loglinear", "wape": wape(y, _loglinear_predict(train, test, naive.estimate))}]
    log(f"[pricing] WAPE neural={rows[0]['wape']:.4f} loglinear={rows[1]['wape']:.4f} ({test.height} item-weeks)")
    return demand, rows, train


def fit_pricing(events: pl.DataFrame, ctx: JobContext) -> JobResult:
    """Select on the validation weeks, report on the test weeks, serve the price book."""
    from shopml.pricing.price_book import PriceBook

    p, log = ctx.periods, ctx.log
    panel = ctx.extra.get("price_panel")
    if panel is None:
        panel = weekly_panel(events, p.start)
        col = "t"
        cuts = (p.valid_from, p.test_from)
    else:  # a given store x week panel: the time line is its week numbers
        panel = panel.with_columns(pl.col("item").cast(pl.Utf8), pl.col("store").cast(pl.Utf8))
        if "comp_price" in panel.columns:
            panel = panel.with_columns(pl.col("comp_price").log().alias("log_comp"))
        col, weeks = "week", panel["week"].max() - panel["week"].min() + 1
        cuts = (panel["week"].min() + int(weeks * 0.7), panel["week"].min() + int(weeks * 0.85))
    log(f"[pricing] panel of {panel.height} rows, {panel['item'].n_unique()} items")
    c = pl.col(col)
    is_valid = (c >= cuts[0]) & (c < cuts[1])
    vdemand, vrows, vtrain = _round(panel, ctx, c < cuts[0], is_valid, ctx.remaining(0.45), log)
    winner = pick_winner({r["model"]: r["wape"] for r in vrows}, "wape", higher_is_better=False, neural="neural")
    choice, default, choice_rows = _per_item_choice(vdemand, vtrain, panel.filter(is_valid), log)
    demand, rows, train = _round(panel, ctx, c < cuts[1], c >= cuts[1], ctx.remaining(0.9), log)
    erows, estimates = _elasticities(train, demand, ctx.extra.get("price_truth"), log)
    from shopml.pricing.choice import loglinear_candidates

    book = PriceBook().fit(demand, train.drop([k for k in train.columns if k.startswith("_") or k == "t"]),
                           alternatives=loglinear_candidates(train, estimates), item_model=choice,
                           default_model=default)
    rows.append({"model": "per-item", "wape": _book_wape(book, panel.filter(c >= cuts[1]), train)})
    for r in rows:
        r["winner"] = r["model"] == winner["model"]
        r["served"] = r["model"] == "per-item"  # the book prices each item with its validation choice
    rows += erows
    served = "per-item"
    items = [_pricing_item(book, i) for i in book.item_ids_[: ctx.cfg.n_samples]]
    return JobResult(components={"pricing": book}, metrics=rows, winner={**winner, "served": served,
                                                                 "note": "each item is priced by the demand that "
                                                                         "won its validation weeks"},
                     extras={"items": items, "elasticities": [r for r in rows if "elasticity" in r],
                             "validation": vrows, "select_on": "wape on the validation weeks",
                             "demand_choice": choice_rows},
                     curves={"demand": (demand.histories_ or [[]])[0]})


def _elasticities(data, demand, truth, log) -> list[dict]:
    """Own-price elasticity with its 95% interval: naive log-log, DML / IV when their
    columns exist, and the neural model's average; the error against the truth if known."""
    from shopml.pricing.elasticity import Z95, estimate_elasticity

    numeric = [c for c in _NUMERIC if c in data.columns]
    specs = [("naive", dict(fixed_effects=["item"]))]
    if {"w1", "w2", "w3"} <= set(data.columns):
        specs.append(("dml", dict(controls=["item", "store", *numeric], n_estimators=100, threads=2)))
    elif "week" in data.columns and data.height >= 100:
        # a log's own panel has no demand shifters but time: the week absorbs the season and
        # the shop's growth, which move prices and units together
        specs.append(("dml", dict(controls=["item", "week", *numeric], n_estimators=100, threads=2)))
    if "cost_shifter" in data.columns:
        specs.append(("iv", dict(instrument="cost_shifter", fixed_effects=["item"])))
    rows, fitted = [], {}
    for method, kw in specs:
        r = fitted[method] = estimate_elasticity(data, method, **kw)
        rows.append({"model": f"elasticity-{method}", "elasticity": r.estimate, "se": r.se,
                     "ci_low": r.ci_low, "ci_high": r.ci_high})
    avg = demand.average_elasticity(data)[0]
    rows.append({"model": "elasticity-neural", "elasticity": avg["elasticity"], "se": avg["se"],
                 "ci_low": avg["elasticity"] - Z95 * avg["se"], "ci_high": avg["elasticity"] + Z95 * avg["se"]})
    true_mean = None if truth is None else float(np.mean(truth))
    for r in rows:
        if true_mean is not None:
            r["true_elasticity"], r["elasticity_error"] = true_mean, abs(r["elasticity"] - true_mean)
        log(f"[pricing] {r['model']}: {r['elasticity']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
    return rows, fitted


def _per_item_choice(demand, train, valid, log) -> tuple[dict, str, list[dict]]:
    """Per item, the demand (neural, or log-linear with each adjusted elasticity) with the
    lowest error on the validation weeks (:func:`shopml.pricing.choice.choose_per_item`)."""
    from shopml.pricing.choice import choose_per_item, loglinear_candidates

    _, estimates = _elasticities(train, demand, None, lambda m: None)
    choice, default, rows = choose_per_item({"neural": demand, **loglinear_candidates(train, estimates)}, valid)
    log("[pricing] per-item demand: " + ", ".join(f"{r['model']} {r['items_chosen']} items" for r in rows)
        + f" (default {default})")
    return choice, default, rows


def _pricing_item(book, item_id: str) -> dict:
    """Curves and the proposed price (±20% of current, >= 5% margin) for the report."""
    curve = book.curve(item_id, points=40)
    prop = book.optimize_item(item_id, max_change=0.2, min_margin=0.05)
    return {**curve, "chosen_price": prop["price"], "expected_units": prop["expected_units"],
            "profit_at_chosen": prop["profit"], "binding": prop["binding"], "unit_cost": prop["unit_cost"]}


def _book_wape(book, test: pl.DataFrame, train: pl.DataFrame) -> float:
    """WAPE on the test weeks with each item priced by the book's chosen demand."""
    from shopml.evaluation.metrics import wape

    test = test.filter(pl.col("item").is_in(train["item"].unique().implode()))
    pred = np.zeros(test.height)
    names = np.array([book.demand_model(i) for i in test["item"].to_list()])
    for name in set(names.tolist()):
        rows = np.flatnonzero(names == name)
        pred[rows] = book.demands_[name].predict(test[rows])
    return wape(test["units"].to_numpy(), pred)
