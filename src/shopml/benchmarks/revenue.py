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
ranking's NDCG@10 (over both orders). The test rows report it with ``recommended: true``.

Two reference rankers run the same grid, their blends chosen the same way, and every slate is
scored on the true probabilities:

* ``ranker: truth`` ranks by the true probabilities: the ceiling no model reaches, since it
  knows each user's taste;
* ``ranker: bayes`` ranks by :meth:`~shopml.data.simulate.ShopTruth.bayes_next_view_probs`:
  every planted parameter known except the user's taste, which is the posterior mean given
  the history, so the best that any model learning tastes from this log can do. Its gain
  (``bayes_profit_gain``) is what a bar on this simulator can ask of a model.

Example:
    >>> res = run_revenue(n_users=300, n_items=60, epochs=2)  # doctest: +SKIP
    >>> sorted({r["objective"] for r in res.rows})            # doctest: +SKIP
    ['profit', 'relevance', 'revenue']
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from shopml.benchmarks._common import BenchmarkResult, peak_rss_mb
from shopml.evaluation.protocols import row_mask
from shopml.recommend.value import ORDERS

__all__ = ["BLENDS", "run_revenue", "seed_ceilings", "slate_values", "recommend_blend", "truth_slates"]

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


def _grid(model, users, p_true, margin_value, price, targets, k, exclude=None, p_rank=None,
          ranker: str = "sasrec") -> list[dict]:
    """The blend grid ranked by SASRec (``model``), or, with ``model=None``, by the
    probabilities ``p_rank`` (the truth, the ceiling no model reaches, or the taste posterior,
    the best a model that learns from the log can do); every slate is scored on ``p_true``."""
    rows = []
    grid = [("relevance", 0.0, "relevance")] + [(obj, b, o) for obj in ("profit", "revenue") for o in ORDERS
                                                for b in BLENDS[1:]]
    for objective, blend, order in grid:
        if model is None:
            value = price if objective == "revenue" else margin_value
            s = truth_slates(p_true if p_rank is None else p_rank, value, blend, k, exclude, order)
        else:
            s = _slates(model, users, objective, blend, k, order)
        prof = slate_values(s, p_true, margin_value, targets)
        rev = slate_values(s, p_true, price, targets)
        rows.append({"ranker": ranker, "objective": objective, "blend": blend,
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
    """The grid of the three rankers on each ``(split, histories, targets)``; the blends are chosen
    on the "valid" split (which comes first) and flagged ``recommended`` on every split."""
    res_rows, chosen = [], {}
    for split, hist, targets in splits:
        model.set_histories(hist)
        rows, p, p_bayes, tgt = truth_rows(hist, targets)
        users = [hist.user_ids[r] for r in rows]
        exclude = row_mask(hist.indptr, hist.items, rows, p.shape[1] + 1)[:, 1:].numpy()  # items are 1-based
        for ranker, grid in (("sasrec", _grid(model, users, p, margin_value, price, tgt, k)),
                             ("truth", _grid(None, users, p, margin_value, price, tgt, k, exclude, ranker="truth")),
                             ("bayes", _grid(None, users, p, margin_value, price, tgt, k, exclude, p_bayes,
                                             "bayes"))):
            if split == "valid":
                for obj in ("profit", "revenue"):
                    best = recommend_blend([g for g in grid if g["objective"] in (obj, "relevance")],
                                           max_ndcg_loss, key=f"expected_{obj}@{k}")
                    chosen[ranker, obj] = (best["blend"], best["order"])
            for g in grid:
                rec = g["objective"] == "relevance" or (g["blend"], g["order"]) == chosen.get((ranker, g["objective"]))
                res_rows.append({"split": split, **g, "recommended": bool(rec), "n_users": len(users)})
    return res_rows, chosen


@dataclass
class _Shop:
    """A simulated shop with planted margins, its view sequences split leave-one-out, and the
    truth in the sequences' item order (columns are model item indices - 1)."""

    truth: object
    splits: tuple  # ("valid", train, valid targets), ("test", train + valid, test targets)
    to_truth: np.ndarray  # model index - 1 -> truth column
    user_rows: np.ndarray  # sequence row -> truth user
    margin_value: np.ndarray  # price x margin, model order
    price: np.ndarray  # model order
    prices: dict  # raw item id -> price
    costs: dict  # raw item id -> unit cost

    def truth_rows(self, hist, targets: np.ndarray):
        """Rows with a target and a history; their true and taste-posterior next-item
        probabilities ``[R, n]``; 0-based targets."""
        rows = np.flatnonzero((targets > 0) & (hist.lengths > 0))
        last = hist.items[hist.indptr[rows + 1] - 1] - 1
        p = self.truth.next_view_probs(self.user_rows[rows], self.to_truth[last])[:, self.to_truth]
        bayes = self.truth.bayes_next_view_probs(hist.indptr, self.to_truth[hist.items - 1])[rows][:, self.to_truth]
        return rows, p, bayes, targets[rows] - 1


def _simulate(n_users: int, n_items: int, seed: int) -> _Shop:
    import polars as pl

    from shopml.data.sequences import build_sequences, leave_one_out
    from shopml.data.simulate import simulate_shop

    shop = simulate_shop(n_users=n_users, n_items=n_items, seed=seed)
    truth = shop.truth
    margin = np.random.default_rng(seed + 1).uniform(0.05, 0.6, n_items)
    price = truth.item_price.astype(np.float64)
    seqs = build_sequences(shop.events.filter(pl.col("event_type") == "view"))
    pos = {raw: i for i, raw in enumerate(truth.item_ids)}
    ids = seqs.item_map.to_list()
    to_truth = np.array([pos[i] for i in ids])
    user_pos = {u: i for i, u in enumerate(truth.user_ids)}
    train, valid, test = leave_one_out(seqs)
    return _Shop(truth=truth, splits=(("valid", train, valid), ("test", train.append(valid), test)),
                 to_truth=to_truth, user_rows=np.array([user_pos[u] for u in seqs.user_ids]),
                 margin_value=(price * margin)[to_truth], price=price[to_truth],
                 prices={i: float(price[pos[i]]) for i in ids},
                 costs={i: float(price[pos[i]] * (1 - margin[pos[i]])) for i in ids})


def seed_ceilings(seeds, *, n_users: int = 3000, n_items: int = 400, k: int = 10) -> list[dict]:
    """Per simulator seed, on the test item: the expected-profit gain (and NDCG@10 change) of
    ranking by expected value (blend 1, relevance order) over relevance ranking, for the true
    probabilities and for the taste posterior. No model is trained, so a bar can be read
    against more than one draw of the shop."""
    out = []
    for seed in seeds:
        shop = _simulate(n_users, n_items, seed)
        _, hist, targets = shop.splits[1]
        rows, p, bayes, tgt = shop.truth_rows(hist, targets)
        exclude = row_mask(hist.indptr, hist.items, rows, p.shape[1] + 1)[:, 1:].numpy()
        row = {"seed": int(seed)}
        for name, p_rank in (("truth", p), ("bayes", bayes)):
            rel, val = (slate_values(truth_slates(p_rank, shop.margin_value, b, k, exclude, "relevance"), p,
                                     shop.margin_value, tgt) for b in (0.0, 1.0))
            row[f"{name}_profit_gain"] = val["expected_value"] / rel["expected_value"] - 1.0
            row[f"{name}_ndcg_change"] = val["ndcg"] / rel["ndcg"] - 1.0
        out.append(row)
    return out


def run_revenue(*, n_users: int = 3000, n_items: int = 400, seed: int = 0, threads: int = 2,
                epochs: int | None = None, max_ndcg_loss: float = 0.05, k: int = 10,
                ceiling_seeds: int = 5) -> BenchmarkResult:
    """Simulate, train SASRec with prices and planted unit costs, and score the blend grid on
    the validation item (to choose the blend) and on the test item (reported); then the two
    reference rankers' gains on ``ceiling_seeds`` draws of the shop (this seed first)."""
    from shopml.recommend.models import SASRecRecommender

    shop = _simulate(n_users, n_items, seed)
    train, valid = shop.splits[0][1], shop.splits[0][2]
    t0 = time.perf_counter()
    model = SASRecRecommender(threads=threads, progress=False, **({"epochs": epochs} if epochs else {}))
    model.fit(train, valid, item_prices=shop.prices, item_costs=shop.costs)
    model.calibrate(train, valid)
    train_s = time.perf_counter() - t0
    res_rows, chosen = _score_splits(model, shop.splits, shop.truth_rows, shop.margin_value, shop.price, k,
                                     max_ndcg_loss)
    truth_gain, bayes_gain = _gains(res_rows, k, "truth"), _gains(res_rows, k, "bayes")
    picked = {r: {obj: b for (rk, obj), (b, _) in chosen.items() if rk == r} for r in ("sasrec", "truth", "bayes")}
    extra = {"n_users": n_users, "n_items": n_items, "seed": seed, "threads": threads, "train_seconds": train_s,
             "sasrec_epochs": model.fit_info_.get("epochs"), "temperature": model.temperature_,
             "recommended_blend": picked["sasrec"],
             "recommended_order": {obj: o for (r, obj), (_, o) in chosen.items() if r == "sasrec"},
             "truth_recommended_blend": picked["truth"],
             "truth_profit_gain": truth_gain["profit_gain"], "truth_ndcg_change": truth_gain["ndcg_change"],
             "bayes_recommended_blend": picked["bayes"],
             "bayes_profit_gain": bayes_gain["profit_gain"], "bayes_ndcg_change": bayes_gain["ndcg_change"],
             "max_ndcg_loss": max_ndcg_loss, **_gains(res_rows, k),
             "ceilings_by_seed": seed_ceilings(range(seed, seed + ceiling_seeds), n_users=n_users,
                                               n_items=n_items, k=k),
             "peak_rss_mb": peak_rss_mb(),
             "protocol_note": "simulated shop; true next-item probabilities; margins planted U(0.05, 0.6); "
                              "blend chosen on the validation item, reported on the test item; history excluded"}
    log.info("revenue: blend %s (%s order) gives %+.1f%% expected profit at %+.1f%% NDCG@10 (taste posterior: "
             "%+.1f%%; true probabilities: %+.1f%%)", extra["recommended_blend"].get("profit"),
             extra["recommended_order"].get("profit"), 100 * extra["profit_gain"], 100 * extra["ndcg_change"],
             100 * extra["bayes_profit_gain"], 100 * extra["truth_profit_gain"])
    return BenchmarkResult("simulated shop, revenue- and profit-aware ranking", res_rows, extra)
