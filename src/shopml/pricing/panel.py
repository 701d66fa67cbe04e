"""Store x product x week price panels (the Dominick's OJ layout) and their benchmark.

Layout: ``store, brand, week, logmove, feat, price`` (logmove = log units); optional store
demographics joined on ``store``. :func:`run_panel_benchmark` estimates the own-price
elasticity with naive OLS (pooled with brand effects, and per brand), DML (store
demographics, week, brand and feature controls) and the monotone neural ensemble (per
brand, with a K-fold stability check), then reports the model-based profit change of
store-level prices kept within ±10% of current ones (the Montgomery 1997 comparison).

Example:
    >>> from shopml.data.market import simulate_market
    >>> panel = oj_layout(simulate_market(n_items=3, n_stores=4, n_weeks=10, seed=0).panel)
    >>> panel.columns
    ['store', 'brand', 'week', 'logmove', 'feat', 'price']
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl

from shopml.data.public import OJ_COLUMNS, read_oj
from shopml.errors import DataError
from shopml.pricing.demand import NeuralDemand
from shopml.pricing.elasticity import estimate_elasticity
from shopml.pricing.loglinear import LogLinearDemand
from shopml.pricing.optimize import Constraints, optimize_price

__all__ = ["read_panel", "oj_layout", "run_panel_benchmark", "montgomery_comparison"]

COLUMNS = ["store", "brand", "week", "logmove", "feat", "price"]
CAVEAT = ("model-based: the profit change is computed with shopml's own fitted demand model and an assumed "
          "unit cost (cost_fraction x current price), not from a field experiment as in Montgomery (1997)")


def read_panel(path, demo_path=None) -> pl.DataFrame:
    """The OJ layout for the panel benchmark: :func:`shopml.data.public.read_oj` (CSV or
    Parquet; store demographics joined when given), ``COLUMNS`` in order, and each
    demographic as a ``demo_*`` control, a store without demographics getting the mean."""
    df = read_oj(path, demo_path)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; expected {COLUMNS}", path=path, row=1, column=missing[0])
    demo = [c for c in df.columns if c not in OJ_COLUMNS]
    return df.select(*COLUMNS, *[pl.col(c).fill_null(pl.col(c).mean()).alias(f"demo_{c}") for c in demo])


def oj_layout(panel: pl.DataFrame) -> pl.DataFrame:
    """A simulated market (``simulate_market().panel``) in the OJ column layout."""
    return panel.select(pl.col("store").cast(pl.Int64), pl.format("p{}", pl.col("item")).alias("brand"),
                        pl.col("week").cast(pl.Int64), pl.col("log_units").alias("logmove"),
                        pl.col("promo").cast(pl.Int64).alias("feat"), pl.col("price"))


def _demo_cols(df):
    return [c for c in df.columns if c.startswith("demo_")]


def _neural(df, *, epochs, members, threads, seed):
    batch = int(min(8192, max(512, df.height // 300)))
    # Week enters as a number (trend + season), not an embedding: Dominick's prices move
    # chain-wide by week, so week embeddings would absorb most price variation and leave the
    # elasticity weakly identified (unstable across folds).
    return NeuralDemand(y="logmove", categorical=["brand", "store"], numeric=["feat", "week"] + _demo_cols(df),
                        item="brand", n_members=members, epochs=epochs, batch_size=batch, seed=seed,
                        threads=threads, patience=2)


def _rows(model: str, results: list[dict], key="estimate") -> list[dict]:
    return [{"model": model, "brand": r["segment"], "elasticity": r[key], "se": r["se"], "n": r["n"]} for r in results]


def neural_fold_stability(df, *, folds=5, epochs=20, members=3, threads=2, seed=0, max_rows=200_000) -> dict:
    """Per-brand elasticity of a model trained on each K-1 folds; the range across folds.
    Panels over ``max_rows`` are subsampled first (keeps a 1.6M-row run within minutes)."""
    if df.height > max_rows:
        df = df.sample(max_rows, seed=seed)
    fold = np.random.default_rng(seed).integers(0, folds, df.height)
    per_fold = []
    for k in range(folds):
        model = _neural(df.filter(pl.Series(fold != k)), epochs=epochs, members=members, threads=threads,
                        seed=seed + k).fit(df.filter(pl.Series(fold != k)))
        per_fold.append({r["segment"]: r["elasticity"] for r in model.average_elasticity(df, by="brand")})
    brands = sorted(per_fold[0])
    spread = {b: float(np.ptp([f[b] for f in per_fold])) for b in brands}
    return {"folds": per_fold, "range_by_brand": spread, "max_range": max(spread.values()), "rows": df.height}


def montgomery_comparison(df, model, *, max_change=0.1, cost_fraction=0.7, last_weeks=8, max_units=500,
                          seed=0) -> dict:
    """Model-based profit change when each store x brand price may move within ±max_change."""
    recent = df.filter(pl.col("week") > df["week"].max() - last_weeks)
    keys = recent.select("store", "brand").unique().sort("store", "brand")
    pick = np.sort(np.random.default_rng(seed).permutation(keys.height)[:max_units])
    parts = recent.partition_by(["store", "brand"], as_dict=True)
    now_total = new_total = 0.0
    changes = []
    for store, brand in keys[pick].iter_rows():
        ctx = parts[(store, brand)]
        current = float(np.round(ctx["price"].median(), 2))
        cost = cost_fraction * current
        d = optimize_price(model, ctx, current_price=current, cost=cost,
                           constraints=Constraints(max_change=max_change), explain=False)
        now_total += d["current_value"]
        new_total += d["profit"]
        changes.append(d["price"] / current - 1)
    return {"profit_change": new_total / now_total - 1, "units": len(changes), "max_change": max_change,
            "cost_fraction": cost_fraction, "mean_price_change": float(np.mean(changes)),
            "published_montgomery_1997": 0.0274, "caveat": CAVEAT}


def run_panel_benchmark(df: pl.DataFrame, *, folds=5, epochs=20, members=3, n_folds_dml=5, threads=2, seed=0,
                        cost_fraction=0.7) -> tuple[list[dict], dict]:
    """Rows (naive, naive_by_brand, dml, neural; per brand and ``all``) plus extras."""
    timings, rows, extra = {}, [], {}
    t = time.perf_counter()
    r = estimate_elasticity(df, "naive", y="logmove", fixed_effects=["brand"])
    rows.append({"model": "naive", "brand": "all", "elasticity": r.estimate, "se": r.se, "n": r.n})
    r = estimate_elasticity(df, "naive", y="logmove", segment="brand")
    rows += _rows("naive_by_brand", r.segments)
    timings["naive"] = time.perf_counter() - t
    t = time.perf_counter()
    controls = ["store", "brand", "week", "feat"] + _demo_cols(df)
    # Large panels: 3 folds of 100 trees keep the first stages within a couple of minutes.
    big = df.height > 500_000
    r = estimate_elasticity(df, "dml", y="logmove", controls=controls, segment="brand",
                            n_folds=3 if big else n_folds_dml, n_estimators=100 if big else 200,
                            threads=threads, seed=seed)
    rows.append({"model": "dml", "brand": "all", "elasticity": r.estimate, "se": r.se, "n": r.n,
                 "ci_low": r.ci_low, "ci_high": r.ci_high})
    rows += [row | {"ci_low": s["ci_low"], "ci_high": s["ci_high"]} for row, s in zip(_rows("dml", r.segments), r.segments)]
    timings["dml"] = time.perf_counter() - t
    t = time.perf_counter()
    model = _neural(df, epochs=epochs, members=members, threads=threads, seed=seed).fit(df)
    rows += _rows("neural", model.average_elasticity(df, by="brand"), key="elasticity")
    timings["neural"] = time.perf_counter() - t
    t = time.perf_counter()
    extra["montgomery"] = montgomery_comparison(df, model, cost_fraction=cost_fraction, seed=seed)
    dml_all = next(x for x in rows if x["model"] == "dml" and x["brand"] == "all")
    loglin = LogLinearDemand(elasticity=dml_all["elasticity"], se=dml_all["se"], keys=["store", "brand"],
                             y="logmove").fit(df)
    extra["montgomery_dml"] = montgomery_comparison(df, loglin, cost_fraction=cost_fraction, seed=seed)
    timings["montgomery"] = time.perf_counter() - t
    if folds and folds > 1:
        t = time.perf_counter()
        extra["neural_folds"] = neural_fold_stability(df, folds=folds, epochs=epochs, members=members, threads=threads,
                                                     seed=seed)
        timings["neural_folds"] = time.perf_counter() - t
    extra["timings_seconds"] = timings
    return rows, extra
