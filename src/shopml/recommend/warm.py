"""The recommend job of ``shopml fit --warm-start``: continue the previous run's models on the
log as it is now, instead of choosing and training them again.

The previous run served one recommender (``recommend``) and kept its neural model beside it
(``recommend_sasrec``) when a baseline won. Each is refreshed through
:meth:`~shopml.recommend.base.SequentialRecommender.refresh`: item ids stay where they were
(new items are appended and scored through their features), SASRec trains a few epochs from
its weights on the users with new events plus a replay sample of the others, and the counting
baselines are refitted (seconds). The served model is the previous one: there is no
reselection, so nothing here needs a validation window. It is scored on the test window
exactly like a full fit, so the two can be compared (``shopml benchmark refresh``).
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import polars as pl

from shopml.data.sequences import IdMap, build_sequences
from shopml.evaluation.protocols import evaluate_windows
from shopml.jobs import JobContext, JobResult, Skip
from shopml.recommend.job import K, _samples, _shop_value, _targets, item_quantities, item_side, user_events

__all__ = ["refresh_recommend", "refresh_rows"]


def refresh_rows(seqs, active_users: set, replay: float, seed: int = 0) -> np.ndarray:
    """History rows a refresh trains on: every user with new events, plus ``replay`` times as
    many of the others drawn at random (so the model does not forget the old period).

    Example:
        >>> from shopml.data.sequences import sequences_from_lists
        >>> s = sequences_from_lists([["a"], ["b"], ["c"], ["d"]], ["u0", "u1", "u2", "u3"])
        >>> refresh_rows(s, {"u1"}, replay=1.0).size
        2
    """
    is_active = np.fromiter((u in active_users for u in seqs.user_ids), dtype=bool, count=seqs.n_users)
    others = np.flatnonzero(~is_active)
    n = min(len(others), int(round(replay * is_active.sum())))
    picked = np.random.default_rng(seed).choice(others, n, replace=False) if n else others[:0]
    return np.sort(np.concatenate([np.flatnonzero(is_active), picked]))


def refresh_recommend(events: pl.DataFrame, ctx: JobContext) -> JobResult:
    """Refresh the previous run's recommenders on events before the test window; score them on
    the test window; serve the previous run's choice with the latest histories."""
    prev, p, cfg, log = ctx.extra["previous"], ctx.periods, ctx.cfg, ctx.log
    served = prev.get("recommend")
    if served is None:
        raise Skip("the previous run has no recommender to refresh")
    ev = user_events(events)
    train_ev = ev.filter(pl.col("timestamp") < p.test_from)
    if train_ev.height == 0:
        raise Skip(f"no events of known users before {p.test_from.date()}")
    seqs = build_sequences(train_ev, item_map=IdMap(served.item_ids_).extended(train_ev["item_id"]))
    since = _previous_cut(prev)
    prev_start = dt.datetime.fromisoformat(prev.manifest["params"]["periods"]["start"])
    if ev["timestamp"].min() > prev_start:  # the histories are rebuilt from this log
        log(f"[recommend] warning: this log starts {ev['timestamp'].min().date()}, after the previous run's "
            f"{prev_start.date()}; histories hold only what this log holds (give the whole log)")
    active = set(train_ev.filter(pl.col("timestamp") >= since)["user_id"].cast(pl.Utf8).unique().to_list())
    rows = refresh_rows(seqs, active, cfg.refresh_replay, cfg.seed)
    log(f"[recommend] warm start: {len(active)} users with events since {since.date()}, "
        f"{seqs.n_items - served.n_items_} new items, training on {len(rows)} histories")
    from shopml.data.features import ItemFeatures
    from shopml.recommend.baselines import MostPopular

    side = {**item_side(ev), "item_features": ItemFeatures.from_events(ev),  # once, for every model
            "item_quantities": item_quantities(train_ev)}
    models = {prev.extras.get("recommend", {}).get("model", "served"): served}
    if prev.get("recommend_sasrec") is not None:
        models["sasrec"] = prev.get("recommend_sasrec")
    t_indptr, t_items, t_values = _targets(seqs, ev.filter(pl.col("timestamp") >= p.test_from))
    metrics, seconds = [], {}
    for name, model in models.items():
        t0 = time.perf_counter()
        model.refresh(seqs, rows=rows, epochs=cfg.refresh_epochs, lr_scale=cfg.refresh_lr_scale, **side)
        seconds[name] = round(time.perf_counter() - t0, 2)
        res = evaluate_windows(model.score_batch, seqs.indptr, seqs.items, t_indptr, t_items, k=K,
                               n_items=model.n_items_, target_values=t_values)
        for proto in ("A", "B"):
            metrics.append({"model": name, "protocol": proto, **res[proto], "train_seconds": seconds[name],
                            "mode": "warm", "winner": model is served})
        log(f"[recommend] {name} (warm, {seconds[name]} s): A ndcg@10={res['A']['ndcg@10']:.4f}  "
            f"B ndcg@10={res['B']['ndcg@10']:.4f}")
    pop = MostPopular().fit(seqs, **side)
    value = _shop_value(served, (seqs, t_indptr, t_items, t_values), served.temperature_)
    everything = build_sequences(ev, item_map=seqs.item_map)
    for m in (*models.values(), pop):
        m.set_histories(everything)
    components = {"recommend": served, "recommend_pop": pop}
    if "sasrec" in models and models["sasrec"] is not served:
        components["recommend_sasrec"] = models["sasrec"]
    winner = {**prev.manifest.get("params", {}).get("winners", {}).get("recommend", {}), "mode": "warm"}
    return JobResult(components=components, metrics=metrics, winner=winner,
                     extras={**{k: v for k, v in prev.extras.get("recommend", {}).items()
                                if k in ("model", "select_on", "explanation")},
                             "mode": "warm", "refresh": {"since": since.isoformat(), "rows": int(len(rows)),
                                                         "active_users": len(active), "seconds": seconds,
                                                         "epochs": cfg.refresh_epochs},
                             "samples": _samples(served, cfg.n_samples), **value})


def _previous_cut(prev):
    """The previous run's models were trained on events before its test window."""
    return dt.datetime.fromisoformat(prev.manifest["params"]["periods"]["test_from"])
