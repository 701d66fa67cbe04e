"""The revenue benchmark (``shopml benchmark revenue``): how much profit a slate gains by
ranking on expected value, and what it costs in relevance, where the truth is known.

The simulator (:func:`shopml.data.simulate.simulate_shop`) knows every user's true
probability of each next item (:meth:`~shopml.data.simulate.ShopTruth.next_view_probs`) and
its prices; the benchmark plants a margin per item (uniform in ``[0.05, 0.6]``, seeded; unit
cost = price x (1 - margin)). SASRec is trained on the view sequences (leave-one-out, early
stopping and temperature on the validation item) with the prices and unit costs, and ranks
each user's top 10 (history excluded) by ``log P + blend x log(value)`` for a grid of blends
(:mod:`shopml.recommend.value`), the slate shown in either order: ``relevance`` (descending
P, the default) or ``value`` (the key).

Per objective and blend: ``expected_profit@10`` (the mean over users of the sum, over the
slate, of true probability x unit margin), ``expected_revenue@10``, ``ndcg@10`` and
``hr@10`` against the sampled test item, and ``expected_ndcg@10`` (the same under the true
probabilities, without sampling noise). The recommended blend is chosen on the validation
item: the most expected profit at no more than ``max_ndcg_loss`` (5%) below relevance
ranking's NDCG@10 (over both orders). The test rows report it with ``recommended: true``. The same grid ranked
by the true probabilities (``ranker: truth``) is the ceiling: what a perfect model would gain.

Example:
    >>> res = run_revenue(n_users=300, n_items=60, epochs=2)  # doctest: +SKIP
    >>> sorted({r["objective"] for r in res.rows})            # doctest: +SKIP
    ['profit', 'relevance', 'revenue']
"""

from __future__ import annotations

import logging
import time

import numpy as np

from shopml.benchmarks._common import BenchmarkResult, peak_rss_mb
from shopml.evaluation.protocols import row_mask
from shopml.recommend.value import ORDERS

__all__ = ["BLENDS", "run_revenue", "slate_values", "recommend_blend", "truth_slates"]

log = logging.getLogger(__name__)

BLENDS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def slate_values(slates: np.ndarray, p_true: np.ndarray, unit_value: np.ndarray, targets: np.ndarray) -> dict:
    """Metrics of slates ``[U, k]`` (0-based item columns, -1 = empty) under the true
    probabilities ``p_true [U, n]``, per-item value ``unit_value [n]`` and sampled
    ``targets [U]`` (0-based). Returns mean expected value, hr, ndcg and expected ndcg at k.

    Example:
        >>> s = np.array([[1, 0]]); p = np.array([[0.2, 0.5, 0.3]])
        >>> r = slate_values(s, p, np.array([1.0, 2.0, 3.0]), np.array([0]))
        >>> round(r["expected_value"], 3), r["hr"], round(r["ndcg"], 4)   # 0.5*2 + 0.2*1
        (1.2, 1.0, 0.6309)
    """
    k = slates.shape[1]
    ok = slates >= 0
    cols = np.where(ok, slates, 0)
    p = np.take_along_axis(p_true, cols, 1) * ok
    disc = 1.0 / np.log2(np.arange(k) + 2.0)
    hit = (cols == targets[:, None]) & ok
    return {"expected_value": float((p * unit_value[cols]).sum(1).mean()), "hr": float(hit.any(1).mean()),
            "ndcg": float((hit * disc).sum(1).mean()), "expected_ndcg": float((p * disc).sum(1).mean())}


def recommend_blend(rows: list[dict], max_ndcg_loss: float, key: str = "expected_profit@10") -> dict:
    """The row (blend and order) with the most ``key`` (expected profit) among rows whose
    NDCG@10 is at most ``max_ndcg_loss`` (relative) below the blend-0 row's; on a tie, the
    smaller blend.

    Example:
        >>> rows = [{"blend": 0.0, "ndcg@10": 0.1, "expected_profit@10": 1.0},
        ...         {"blend": 0.5, "ndcg@10": 0.096, "expected_profit@10": 1.3},
        ...         {"blend": 1.0, "ndcg@10": 0.08, "expected_profit@10": 1.6}]
        >>> recommend_blend(rows, 0.05)["blend"]
        0.5
    """
    base = next(r for r in rows if r["blend"] == 0.0)["ndcg@10"]
    ok = [r for r in rows if r["ndcg@10"] >= (1.0 - max_ndcg_loss) * base]
    return max(ok, key=lambda r: (r[key], -r["blend"]))


def _slates(model, users: list[str], objective: str, blend: float, k: int, order: str) -> np.ndarray:
    recs = model.recommend(users, k=k, objective=objective, blend=blend, order=order) \
        if objective != "relevance" else model.recommend(users, k=k)
    out = np.full((len(users), k), -1, dtype=np.int64)
    for u, r in enumerate(recs):
        ids = [model._item_index[x["item_id"]] - 1 for x in r]
        out[u, : len(ids)] = ids
    return out


def truth_slates(p_true: np.ndarray, unit_value: np.ndarray, blend: float, k: int,
                 exclude: np.ndarray | None = None, order: str = "value") -> np.ndarray:
    """Slates ``[U, k]`` ranked by the *true* ``log P + blend x log(value)``, items in
    ``exclude`` (a ``[U, n]`` bool mask, the history) left out: what a perfect model reaches;
    ``order="relevance"`` shows each slate in descending true P.

    Example:
        >>> p = np.array([[0.5, 0.3, 0.2]]); v = np.array([1.0, 1.0, 4.0])
        >>> truth_slates(p, v, 0.0, 2).tolist(), truth_slates(p, v, 1.0, 2).tolist()
        ([[0, 1]], [[2, 0]])
        >>> truth_slates(p, v, 1.0, 2, order="relevance").tolist()
        [[0, 2]]
    """
    key = np.log(np.maximum(p_true, 1e-300)) + blend * np.log(np.maximum(unit_value, 1e-300))
    if exclude is not None:
        key = np.where(exclude, -np.inf, key)
    top = np.argpartition(-key, k - 1, axis=1)[:, :k]
    by = np.log(np.maximum(p_true, 1e-300)) if order == "relevance" else key
    rank = np.argsort(-np.take_along_axis(by, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, rank, 1)


def _grid(model, users, p_true, margin_value, price, targets, k, exclude=None) -> list[dict]:
    """The blend grid ranked by SASRec (``ranker: sasrec``), or, with ``model=None``, by the
    true probabilities (``ranker: truth``), the ceiling any model can reach."""
    rows = []
    grid = [("relevance", 0.0, "relevance")] + [(obj, b, o) for obj in ("profit", "revenue") for o in ORDERS
                                                for b in BLENDS[1:]]
    for objective, blend, order in grid:
        if model is None:
            value = price if objective == "revenue" else margin_value
            s = truth_slates(p_true, value, blend, k, exclude, order)
        else:
            s = _slates(model, users, objective, blend, k, order)
        prof = slate_values(s, p_true, margin_value, targets)
        rev = slate_values(s, p_true, price, targets)
        rows.append({"ranker": "truth" if model is None else "sasrec", "objective": objective, "blend": blend,
                     "order": order,
                     f"expected_profit@{k}": prof["expected_value"],
                     f"expected_revenue@{k}": rev["expected_value"], f"ndcg@{k}": prof["ndcg"],
                     f"hr@{k}": prof["hr"], f"expected_ndcg@{k}": prof["expected_ndcg"]})
    return rows


def _gains(rows: list[dict], k: int, ranker: str = "sasrec") -> dict:
    """Relative change of expected profit and NDCG at the recommended profit blend (test rows)."""
    mine = [r for r in rows if r["split"] == "test" and r["ranker"] == ranker]
    base = next(r for r in mine if r["objective"] == "relevance")
    best = next(r for r in mine if r["objective"] == "profit" and r["recommended"])
    return {"profit_gain": best[f"expected_profit@{k}"] / base[f"expected_profit@{k}"] - 1.0,
            "ndcg_change": best[f"ndcg@{k}"] / base[f"ndcg@{k}"] - 1.0}


def _score_splits(model, splits, truth_rows, margin_value, price, k: int, max_ndcg_loss: float):
    """The grid of both rankers on each ``(split, histories, targets)``; the blends are chosen
    on the "valid" split (which comes first) and flagged ``recommended`` on every split."""
    res_rows, chosen = [], {}
    for split, hist, targets in splits:
        model.set_histories(hist)
        rows, p, tgt = truth_rows(hist, targets)
        users = [hist.user_ids[r] for r in rows]
        exclude = row_mask(hist.indptr, hist.items, rows, p.shape[1] + 1)[:, 1:].numpy()  # items are 1-based
        for ranker, grid in (("sasrec", _grid(model, users, p, margin_value, price, tgt, k)),
                             ("truth", _grid(None, users, p, margin_value, price, tgt, k, exclude))):
            if split == "valid":
                for obj in ("profit", "revenue"):
                    best = recommend_blend([g for g in grid if g["objective"] in (obj, "relevance")],
                                           max_ndcg_loss, key=f"expected_{obj}@{k}")
                    chosen[ranker, obj] = (best["blend"], best["order"])
            for g in grid:
                rec = g["objective"] == "relevance" or (g["blend"], g["order"]) == chosen.get((ranker, g["objective"]))
                res_rows.append({"split": split, **g, "recommended": bool(rec), "n_users": len(users)})
    return res_rows, chosen


def run_revenue(*, n_users: int = 3000, n_items: int = 400, seed: int = 0, threads: int = 2,
                epochs: int | None = None, max_ndcg_loss: float = 0.05, k: int = 10) -> BenchmarkResult:
    """Simulate, train SASRec with prices and planted unit costs, and score the blend grid on
    the validation item (to choose the blend) and on the test item (reported)."""
    import polars as pl

    from shopml.data.sequences import Sequences, build_sequences, leave_one_out
    from shopml.data.simulate import simulate_shop
    from shopml.recommend.models import SASRecRecommender

    shop = simulate_shop(n_users=n_users, n_items=n_items, seed=seed)
    truth = shop.truth
    rng = np.random.default_rng(seed + 1)
    margin = rng.uniform(0.05, 0.6, n_items)
    price = truth.item_price.astype(np.float64)
    views = shop.events.filter(pl.col("event_type") == "view")
    seqs = build_sequences(views)
    pos = {raw: i for i, raw in enumerate(truth.item_ids)}
    to_truth = np.array([pos[i] for i in seqs.item_map.to_list()])  # model index - 1 -> truth column
    train, valid, test = leave_one_out(seqs)
    train_valid = train.append(valid)
    ids = seqs.item_map.to_list()
    prices = {i: float(price[pos[i]]) for i in ids}
    costs = {i: float(price[pos[i]] * (1 - margin[pos[i]])) for i in ids}
    t0 = time.perf_counter()
    model = SASRecRecommender(threads=threads, progress=False, **({"epochs": epochs} if epochs else {}))
    model.fit(train, valid, item_prices=prices, item_costs=costs)
    model.calibrate(train, valid)
    train_s = time.perf_counter() - t0
    user_pos = {u: i for i, u in enumerate(truth.user_ids)}
    user_rows = np.array([user_pos[u] for u in seqs.user_ids])
    # Truth in the model's item order: columns are model indices - 1.
    margin_value = (price * margin)[to_truth]
    price_m = price[to_truth]

    def truth_rows(hist: Sequences, targets: np.ndarray):
        rows = np.flatnonzero((targets > 0) & (hist.lengths > 0))
        last = hist.items[hist.indptr[rows + 1] - 1] - 1
        p = truth.next_view_probs(user_rows[rows], to_truth[last])[:, to_truth]
        return rows, p, targets[rows] - 1

    splits = (("valid", train, valid), ("test", train_valid, test))
    res_rows, chosen = _score_splits(model, splits, truth_rows, margin_value, price_m, k, max_ndcg_loss)
    truth_gain = _gains(res_rows, k, "truth")
    extra = {"n_users": n_users, "n_items": n_items, "seed": seed, "threads": threads, "train_seconds": train_s,
             "sasrec_epochs": model.fit_info_.get("epochs"), "temperature": model.temperature_,
             "recommended_blend": {obj: b for (r, obj), (b, _) in chosen.items() if r == "sasrec"},
             "recommended_order": {obj: o for (r, obj), (_, o) in chosen.items() if r == "sasrec"},
             "truth_recommended_blend": {obj: b for (r, obj), (b, _) in chosen.items() if r == "truth"},
             "truth_profit_gain": truth_gain["profit_gain"], "truth_ndcg_change": truth_gain["ndcg_change"],
             "max_ndcg_loss": max_ndcg_loss, **_gains(res_rows, k),
             "peak_rss_mb": peak_rss_mb(),
             "protocol_note": "simulated shop; true next-item probabilities; margins planted U(0.05, 0.6); "
                              "blend chosen on the validation item, reported on the test item; history excluded"}
    log.info("revenue: blend %s (%s order) gives %+.1f%% expected profit at %+.1f%% NDCG@10 (true probabilities: "
             "%+.1f%%)", extra["recommended_blend"].get("profit"), extra["recommended_order"].get("profit"),
             100 * extra["profit_gain"], 100 * extra["ndcg_change"],
             100 * extra["truth_profit_gain"])
    return BenchmarkResult("simulated shop, revenue- and profit-aware ranking", res_rows, extra)
