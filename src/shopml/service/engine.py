"""The serving engine: one loaded run, answering the service's questions through the
fitted estimators' Python API. The HTTP handlers (and the demo) only call this class.

Component names in a run (see :mod:`shopml.pipeline`): ``recommend`` (the sequential
recommender), ``recommend_pop`` (popularity, the fallback for unknown users),
``sessions`` (next click), ``intent`` (session purchase probability), ``pricing``
(demand model + optimizer) and ``customers`` (purchase forecast).

Example:
    >>> engine = Engine.load("runs/demo")                          # doctest: +SKIP
    >>> engine.recommend_history(["i1", "i7"], k=3)["items"][0]     # doctest: +SKIP
    {'item_id': 'i12', 'score': 4.1, 'because': []}
"""

from __future__ import annotations

import warnings
from pathlib import Path

from shopml.errors import ShopMLError
from shopml.privacy import load_key, pseudonymize_one
from shopml.recommend.topn import TopN
from shopml.runs import Run, load_run

__all__ = ["Engine", "Unavailable", "UnknownId"]


class Unavailable(ShopMLError):
    """The loaded run has no component for this request."""


class UnknownId(ShopMLError):
    """An item (or other) id the run does not know."""


def _reasons(rec: dict, limit: int = 3) -> list[dict]:
    out = []
    for b in rec.get("because", [])[:limit]:
        weight = b.get("contribution", b.get("weight", 0.0))
        out.append({"item_id": str(b["item_id"]), "contribution": float(weight)})
    return out


class Engine:
    """Answers recommendation, session and pricing requests from one verified run."""

    def __init__(self, run: Run, key: bytes):
        self.run, self._key = run, key
        # Known users' slates, made once per load (a reload builds a new engine, so new lists).
        model = run.components.get("recommend")
        self._top = TopN.build(model) if model is not None else None

    @classmethod
    def load(cls, path, key: bytes | None = None) -> "Engine":
        """Verify and load the run at ``path``; it must use the current pseudonymization key."""
        key = load_key() if key is None else key
        return cls(load_run(Path(path), check_key=True, key=key), key)

    @property
    def fingerprint(self) -> str:
        """The run's name in answers: its manifest fingerprint, never its path."""
        return self.run.fingerprint

    @property
    def component_names(self) -> list[str]:
        return sorted(self.run.components)

    def _component(self, name: str, what: str):
        comp = self.run.components.get(name)
        if comp is None:
            raise Unavailable(f"this run has no {what} model")
        return comp

    # ------------------------------------------------------------------ recommendations
    def pseudonym(self, raw_user_id: str) -> str:
        """The user's pseudonym under the run's key (raw ids never go further than this)."""
        return pseudonymize_one(raw_user_id, self._key)

    def recommend_user(self, raw_user_id: str, *, k: int = 10, explain: bool = False, rules=None,
                       value: dict | None = None) -> dict:
        """Top-k for a shop user id; an unknown user gets popular items, flagged. ``value``
        holds ``objective``, ``blend`` and ``assumed_margin`` of a revenue or profit request."""
        model = self._component("recommend", "recommendation")
        user = self.pseudonym(raw_user_id)
        value = value or {}
        if user in getattr(model, "_user_index", {}):
            recs = model.recommend([user], k=k, explain=explain, rules=rules, **value)[0]
            return self._recs(model, recs, value)
        out = self._popular(k, rules=rules, value=value)
        out["fallback"] = "popularity"
        return out

    def recommend_listed(self, raw_user_id: str, *, k: int = 10, rules=None) -> dict | None:
        """A known user's top-k under ``rules`` read from the lists made at load (the answer
        :meth:`recommend_user` gives), or None when the lists cannot decide it."""
        if self._top is None:
            return None
        recs = self._top.answer(self.pseudonym(raw_user_id), k, rules)
        return None if recs is None else self._recs(self._top.model, recs)

    def recommend_users(self, raw_user_ids: list[str], *, k: int = 10, rules: list | None = None) -> list[dict]:
        """Top-k for many shop user ids with ONE model call for the known ones (the service
        coalesces concurrent requests into this), each under its own ``rules`` (one Rules or
        None per user); unknown users get popular items, flagged."""
        model = self._component("recommend", "recommendation")
        users = [self.pseudonym(u) for u in raw_user_ids]
        rules = list(rules) if rules is not None else [None] * len(users)
        index = getattr(model, "_user_index", {})
        known = [n for n, u in enumerate(users) if u in index]
        recs = model.recommend([users[n] for n in known], k=k, rules=[rules[n] for n in known]) if known else []
        answers = dict(zip(known, recs))
        return [self._recs(model, answers[n]) if n in answers
                else {**self._popular(k, rules=rules[n]), "fallback": "popularity"} for n in range(len(users))]

    def recommend_history(self, items: list[str], *, k: int = 10, exclude_seen: bool = True, explain: bool = False,
                          candidates: list[str] | None = None, rules=None, value: dict | None = None) -> dict:
        """Top-k after a history given at request time (unknown items are skipped, listed)."""
        model = self._component("recommend", "recommendation")
        known = getattr(model, "_item_index", {})
        unknown = [i for i in items if i not in known]
        value = value or {}
        if len(unknown) == len(items):
            out = self._popular(k, candidates=candidates, exclude=items if exclude_seen else (), rules=rules,
                                value=value)
            out.update(fallback="popularity", unknown_items=unknown)
            return out
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown items are reported in the answer instead
            recs = model.recommend([items], k=k, exclude_seen=exclude_seen, candidates=candidates, explain=explain,
                                   rules=rules, **value)[0]
        out = self._recs(model, recs, value)
        out["unknown_items"] = unknown
        return out

    def _recs(self, model, recs: list[dict], value: dict | None = None) -> dict:
        items = [{"item_id": r["item_id"], "score": float(r["score"]), "because": _reasons(r),
                  "pinned": bool(r.get("pinned")), "p_buy": r.get("p_buy"), "expected_value": r.get("expected_value")}
                 for r in recs]
        value = value or {}
        return {"model": getattr(model, "kind", type(model).__name__), "items": items, "fallback": None,
                "unknown_items": [], "objective": value.get("objective", "relevance"),
                "assumed_margin": value.get("assumed_margin"),
                "order": value.get("order", "relevance") if value.get("objective") else None}

    def _popular(self, k: int, candidates=None, exclude=(), rules=None, value: dict | None = None) -> dict:
        pop = self.run.components.get("recommend_pop") or self.run.components["recommend"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            recs = pop.recommend([list(exclude)], k=k, exclude_seen=bool(exclude), candidates=candidates, rules=rules,
                                 **(value or {}))[0]
        return self._recs(pop, recs, value)

    # ------------------------------------------------------------------ sessions
    def predict_session(self, items: list[str], *, event_types: list[str] | None = None,
                        dwell_seconds: list[float] | None = None, k: int = 10) -> dict:
        """Next items of a session and the probability it ends in a purchase."""
        ranker = self._component("sessions", "session")
        with warnings.catch_warnings():  # unknown items are reported in the answer instead
            warnings.simplefilter("ignore")
            rec = ranker.recommend([items], k=k)[0]
        known = set(ranker.item_ids_)
        unknown = [i for i in items if str(i) not in known]
        out = {
            "next_items": [{"item_id": r["item_id"], "score": round(r["score"], 6)} for r in rec],
            "purchase_probability": None,
            "purchase_fallback": None,
            "fallback": rec[0].get("fallback") if rec else None,
            "unknown_items": unknown,
        }
        intent = self.run.components.get("intent")
        if intent is None:
            return out
        index = getattr(intent, "items_", None)
        if not items or (index is not None and not index.encode(items).any()):
            # Nothing the model learnt applies: its answer would be its bias terms alone, a
            # number that looks like a prediction. Say it is the prior instead.
            out.update(purchase_probability=float(intent.base_rate_), purchase_fallback="prior")
        else:
            out["purchase_probability"] = self._purchase_probability(intent, items, event_types, dwell_seconds)
        return out

    @staticmethod
    def _purchase_probability(intent, items, event_types, dwell_seconds) -> float:
        import datetime as dt

        import numpy as np
        import polars as pl

        dwell = np.asarray(dwell_seconds if dwell_seconds is not None else [60.0] * len(items), dtype=float)
        start = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
        offsets = np.concatenate([[0.0], np.cumsum(dwell)[:-1]])
        events = pl.DataFrame({
            "session_id": ["request"] * len(items), "item_id": list(items),
            "event_type": list(event_types or ["view"] * len(items)),
            "timestamp": [start + dt.timedelta(seconds=float(s)) for s in offsets],
        })
        p = intent.predict_proba(events)["p_purchase"]
        return float(p[0]) if p else float(intent.base_rate_)

    # ------------------------------------------------------------------ pricing
    def optimize_price(self, item_id: str, constraints: dict) -> dict:
        """The best price for ``item_id`` under ``constraints`` (see PriceRequest)."""
        model = self._component("pricing", "pricing")
        self._check_item(model, item_id)
        return model.optimize_item(item_id, **constraints)

    def optimize_group(self, item_ids: list[str], constraints: dict) -> dict:
        """One shared price for ``item_ids`` under ``constraints`` (see GroupPriceRequest)."""
        model = self._component("pricing", "pricing")
        for i in item_ids:
            self._check_item(model, i)
        return model.decide_group(item_ids, **constraints)

    def demand_curve(self, item_id: str, *, points: int = 25, unit_cost: float | None = None) -> dict:
        """Units, revenue, profit and elasticity over a price grid for ``item_id``."""
        model = self._component("pricing", "pricing")
        self._check_item(model, item_id)
        return model.curve(item_id, points=points, unit_cost=unit_cost)

    @staticmethod
    def _check_item(model, item_id: str) -> None:
        known = getattr(model, "item_ids_", None)
        if known is not None and item_id not in set(known):
            raise UnknownId(f"unknown item id {item_id!r}")
