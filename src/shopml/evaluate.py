"""``shopml evaluate``: score a saved run on newer events, the way ``fit`` scores its test window.

Given a log and a date, each served component is scored on the events from that date on,
with the events before it as the history: the recommender (HR@10 / NDCG@10 of each user's
future purchases, protocols A and B, beside the run's popularity fallback), the session
model (next item), the customer forecast (MAE of purchase days per customer, served model and
BG/NBD) and the demand model (WAPE of weekly units). Items or users the run has never seen
are left out and counted.

Example:
    >>> rows = evaluate_run("runs/shop", events, "2011-10-01")   # doctest: +SKIP
    >>> sorted(rows)                                             # doctest: +SKIP
    ['customers', 'recommend']
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from shopml.errors import ConfigError

__all__ = ["evaluate_run"]


def _cut(events: pl.DataFrame, from_date) -> dt.datetime:
    t = dt.datetime.fromisoformat(str(from_date)) if not isinstance(from_date, dt.datetime) else from_date
    t = t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
    start, end = events["timestamp"].min(), events["timestamp"].max()
    if not start < t <= end:
        raise ConfigError(f"--from {t.date()} must fall inside the log's time span ({start.date()} to {end.date()})")
    return t


def evaluate_run(run_path, events: pl.DataFrame, from_date) -> dict[str, list[dict]]:
    """Metric rows per job for the run at ``run_path`` on ``events`` from ``from_date`` on."""
    from shopml.runs import load_run

    run = load_run(run_path)
    cut = _cut(events, from_date)
    out = {}
    comps = run.components
    if "recommend" in comps:
        out["recommend"] = _recommend(comps["recommend"], comps.get("recommend_pop"), events, cut)
    if "sessions" in comps:
        out["sessions"] = _sessions(comps["sessions"], events, cut)
    if "customers" in comps:
        out["customers"] = _customers(comps["customers"], events, cut)
    if "pricing" in comps:
        out["pricing"] = _pricing(comps["pricing"], events, cut)
    return out


def _recommend(model, pop, events, cut) -> list[dict]:
    from shopml.data.sequences import IdMap, build_sequences
    from shopml.evaluation.protocols import evaluate_windows
    from shopml.recommend.job import _targets, user_events

    ev = user_events(events)
    seqs = build_sequences(ev.filter(pl.col("timestamp") < cut), item_map=IdMap(model.item_ids_))
    t_ptr, t_items = _targets(seqs, ev.filter(pl.col("timestamp") >= cut))
    rows = []
    for name, m in (("served: " + model.kind, model), ("popularity fallback", pop)):
        if m is None:
            continue
        res = evaluate_windows(lambda h, u, m=m: m.score_batch(h), seqs.indptr, seqs.items, t_ptr, t_items,
                               k=10, n_items=m.n_items_)
        rows += [{"model": name, "protocol": p, **res[p]} for p in ("A", "B")]
    return rows


def _sessions(model, events, cut) -> list[dict]:
    from shopml.sessions.job import session_table, with_sessions

    table = session_table(with_sessions(events)).filter(pl.col("start") >= cut)
    cases = table["items"].to_list()
    if not cases:
        return [{"model": "served", "n_cases": 0}]
    res = model.evaluate([s[:-1] for s in cases], [s[-1] for s in cases], k=20)
    return [{"model": "served", **{k: v for k, v in res.items() if k != "eval_seconds"}}]


def _customers(model, events, cut) -> list[dict]:
    from shopml.customers.job import customer_transactions
    from shopml.evaluation.metrics import mae

    tx = customer_transactions(events)
    end = tx["date"].max()
    horizon = max((end - cut.date()).days // 7, 1)
    hold = tx.filter((pl.col("date") >= cut.date()) & (pl.col("date") < cut.date() + dt.timedelta(days=7 * horizon)))
    fc = model.forecast(horizon, customers=model.customers_)
    actual = dict(hold.group_by("customer_id").len().iter_rows())
    y = np.array([actual.get(c, 0) for c in model.customers_], dtype=float)
    return [{"model": f"served ({fc['forecast_model'][0]})", "mae": mae(y, fc["forecast"].to_numpy()),
             "n_customers": len(y), "weeks": horizon},
            {"model": "bgnbd", "mae": mae(y, fc["bgnbd_expected"].to_numpy())},
            {"model": "rnn", "mae": mae(y, fc["expected_purchases"].to_numpy())}]


def _pricing(book, events, cut) -> list[dict]:
    from shopml.evaluation.metrics import wape
    from shopml.pricing.job import weekly_panel
    from shopml.jobs import Skip

    try:
        panel = weekly_panel(events, events["timestamp"].min(), max_items=10_000)
    except Skip as why:
        return [{"model": "served", "note": str(why)}]
    test = panel.filter((pl.col("t") >= cut) & pl.col("item").is_in(pl.Series(book.item_ids_).implode()))
    if test.height == 0:
        return [{"model": "served", "n_rows": 0}]
    pred = book.demand_.predict(test)
    return [{"model": "served (neural demand)", "wape": wape(test["units"].to_numpy(), pred), "n_rows": test.height}]
