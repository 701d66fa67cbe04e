"""A seeded shop simulator that returns its ground truth beside the events.

:func:`simulate_shop` plants three signals that tests and demos can check models against:

* **tastes**: each user has a Dirichlet taste over categories; fresh views draw a category
  from it, then a (popularity-skewed) item of that category;
* **sequences**: every item has one planted successor (``truth.next_item``, same category)
  that follows it with probability ``follow_prob`` inside a session, so the best possible
  next-item model knows ``next_item``;
* **purchase intent**: each session's true purchase probability is a known logistic
  function of what a model can observe in the session (number of views, carts, mean dwell
  time between views, mean viewed price, category of the first view):
  ``truth.sessions["propensity"]``; ``truth.oracle_auc()`` is the AUC that probability
  reaches on the sampled outcomes, the ceiling for any intent model.

User ids are RAW (``u00001``); :func:`shopml.data.events.read_events` pseudonymizes them.
:func:`simulate_events` is a fast, fully vectorized path for 10M-event benchmarks, and
:func:`simulate_market` (the price/demand market) lives in :mod:`shopml.data.market`.

Example:
    >>> shop = simulate_shop(n_users=50, n_items=40, seed=1)
    >>> sorted(shop.events["event_type"].unique().to_list())
    ['cart', 'purchase', 'view']
    >>> shop.truth.next_item.shape, round(float(shop.truth.sessions["propensity"].mean()), 1) < 0.6
    ((40,), True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import polars as pl

__all__ = ["simulate_shop", "simulate_events", "simulate_market", "SimulatedShop", "ShopTruth", "PROPENSITY_COEF",
           "TASTE_PRIOR"]

#: Logistic coefficients of the true session purchase probability (see :func:`simulate_shop`).
PROPENSITY_COEF = {"intercept": -3.8, "log1p_views": 0.7, "carts": 1.1, "log1p_dwell_min": 0.6, "log_price_ratio": -0.9}
#: Concentration of the symmetric Dirichlet that draws each user's taste over categories.
TASTE_PRIOR = 0.3
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
_US = 1_000_000


@dataclass
class ShopTruth:
    """What the simulator planted. Item arrays are indexed like ``item_ids``, user arrays like
    ``user_ids``; ``next_item`` and ``item_category`` hold 0-based indices.

    ``sessions`` has one row per session: ``session_id, user_id, n_views, n_carts,
    mean_dwell_s, mean_price, category, propensity, purchased``.
    """

    user_ids: list[str]
    item_ids: list[str]
    user_taste: np.ndarray
    item_category: np.ndarray
    item_price: np.ndarray
    next_item: np.ndarray
    follow_prob: float
    category_effect: np.ndarray
    sessions: pl.DataFrame
    coef: dict = field(default_factory=lambda: dict(PROPENSITY_COEF))
    item_weight: np.ndarray | None = None  # P(item | its category) on a fresh draw
    session_len: float = 5.0
    taste_prior: float = TASTE_PRIOR
    _position: dict | None = field(default=None, init=False, repr=False, compare=False)

    def successor(self, item_id: str) -> str:
        """The planted successor of a raw item id.

        Example:
            >>> t = simulate_shop(n_users=5, n_items=20, seed=0).truth
            >>> t.successor(t.item_ids[0]) == t.item_ids[t.next_item[0]]
            True
        """
        if self._position is None:  # built once: tests ask for many items
            self._position = {raw: i for i, raw in enumerate(self.item_ids)}
        return self.item_ids[int(self.next_item[self._position[item_id]])]

    def next_view_probs(self, users: np.ndarray, last_items: np.ndarray) -> np.ndarray:
        """The true P(next view = item) ``[B, n_items]`` of users (rows of ``user_ids``) whose
        last view was ``last_items`` (0-based): the planted successor with probability
        ``(1 - 1/session_len) x follow_prob`` (the session goes on and follows it), else a fresh
        draw from the user's taste and the items' within-category popularity.

        Example:
            >>> t = simulate_shop(n_users=5, n_items=20, seed=0).truth
            >>> p = t.next_view_probs(np.array([0, 1]), np.array([3, 4]))
            >>> p.shape, bool(np.allclose(p.sum(1), 1.0))
            ((2, 20), True)
        """
        a = (1.0 - 1.0 / self.session_len) * self.follow_prob
        fresh = self.user_taste[users][:, self.item_category] * self.item_weight[None, :]
        p = (1.0 - a) * fresh
        p[np.arange(len(users)), self.next_item[last_items]] += a
        return p

    def bayes_next_view_probs(self, indptr: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(next view = item) ``[B, n_items]`` after each history (CSR rows ``indptr``, 0-based
        ``items`` in time order) for a model that knows every planted parameter except the
        user's taste, which it estimates from the history: the Dirichlet posterior mean given
        the categories of the history's fresh views (every view that is not the planted
        successor of the one before it). The best any model that learns tastes from the log
        can do, where :meth:`next_view_probs` (the true taste) is what no model can reach.
        An empty history gets the prior's taste and no successor.

        Example:
            >>> t = simulate_shop(n_users=5, n_items=20, seed=0).truth
            >>> p = t.bayes_next_view_probs(np.array([0, 2, 2]), np.array([3, int(t.next_item[3])]))
            >>> succ = t.next_item[t.next_item[3]]  # the successor of the last view carries a = .8 x .6
            >>> p.shape, bool(np.allclose(p.sum(1), 1.0)), bool(p[0, succ] > 0.48), bool(p[1, succ] < 0.48)
            ((2, 20), True, True, True)
        """
        indptr, items = np.asarray(indptr, dtype=np.int64), np.asarray(items, dtype=np.int64)
        lengths = np.diff(indptr)
        row = np.repeat(np.arange(len(lengths)), lengths)
        first = np.arange(len(items)) == indptr[row]
        prev = np.where(first, 0, np.roll(items, 1))
        fresh = first | (items != self.next_item[prev])
        n_cat = self.user_taste.shape[1]
        counts = np.zeros((len(lengths), n_cat))
        np.add.at(counts, (row[fresh], self.item_category[items[fresh]]), 1.0)
        taste = (counts + self.taste_prior) / (counts.sum(1, keepdims=True) + n_cat * self.taste_prior)
        a = np.where(lengths > 0, (1.0 - 1.0 / self.session_len) * self.follow_prob, 0.0)
        p = (1.0 - a)[:, None] * taste[:, self.item_category] * self.item_weight[None, :]
        some = np.flatnonzero(lengths > 0)
        p[some, self.next_item[items[indptr[some + 1] - 1]]] += a[some]
        return p

    def oracle_auc(self) -> float:
        """AUC of the true propensity on the sampled purchases: the ceiling for intent models."""
        from shopml.evaluation.metrics import auc

        return auc(self.sessions["purchased"].to_numpy(), self.sessions["propensity"].to_numpy())


@dataclass
class SimulatedShop:
    """Events in the canonical schema (raw user ids) and the :class:`ShopTruth`."""

    events: pl.DataFrame
    truth: ShopTruth


# --------------------------------------------------------------------------- catalog


def _catalog(rng: np.random.Generator, n_items: int, n_categories: int) -> dict:
    """Categories, prices, and one planted successor per item inside its category (a
    random cycle, so no item is its own successor when the category has two items)."""
    category = rng.permutation(np.arange(n_items) % n_categories)
    cat_price = np.exp(rng.normal(3.0, 0.6, n_categories))
    price = np.round(cat_price[category] * np.exp(rng.normal(0, 0.35, n_items)), 2)
    next_item = np.empty(n_items, dtype=np.int64)
    members = [rng.permutation(np.flatnonzero(category == c)) for c in range(n_categories)]
    for m in members:  # one cycle per category: a loop over categories, not samples
        next_item[m] = np.roll(m, -1)
    return {"category": category, "price": price, "next_item": next_item, "members": members}


def _fresh_items(rng, taste_rows: np.ndarray, catalog: dict) -> np.ndarray:
    """One fresh item per row: a category from the row's taste, then an item of it with
    a popularity skew (the first members of a category are drawn most)."""
    cum = np.cumsum(taste_rows, axis=1)
    cat = (cum < rng.random((len(taste_rows), 1)) * cum[:, -1:]).sum(1)
    sizes = np.array([len(m) for m in catalog["members"]])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    flat = np.concatenate(catalog["members"])
    rank = np.minimum((sizes[cat] * rng.random(len(cat)) ** 2).astype(np.int64), sizes[cat] - 1)
    return flat[offsets[cat] + rank]


# ------------------------------------------------------------------------------ views


def _view_matrix(rng, taste, catalog, lengths, follow_prob, session_len):
    """Items ``[U, L]`` (-1 = none) and session starts, one time step at a time across all
    users: a view continues the session with the planted successor (``follow_prob``) or a
    fresh taste draw; a session ends after each view with probability ``1/session_len``."""
    n_users, max_len = len(lengths), int(lengths.max())
    items = np.full((n_users, max_len), -1, dtype=np.int64)
    starts = np.zeros((n_users, max_len), dtype=bool)
    prev = np.zeros(n_users, dtype=np.int64)
    for t in range(max_len):  # over time steps; every step is vectorized over users
        new_session = (rng.random(n_users) < 1.0 / session_len) | (t == 0)
        follow = ~new_session & (rng.random(n_users) < follow_prob)
        cur = np.where(follow, catalog["next_item"][prev], _fresh_items(rng, taste, catalog))
        active = t < lengths
        items[active, t], starts[active, t] = cur[active], new_session[active]
        prev = cur
    return items, starts


def _view_frame(rng, items, starts, catalog) -> pl.DataFrame:
    """Flat view events with times: sessions are hours to days apart, views inside a
    session are a user-specific dwell time apart (observable from the timestamps)."""
    n_users = items.shape[0]
    mask = items >= 0
    user = np.broadcast_to(np.arange(n_users)[:, None], items.shape)[mask]
    is_start = starts[mask]
    dwell_mean = np.exp(rng.normal(np.log(45.0), 0.5, n_users))
    dwell = 2.0 + rng.exponential(1.0, len(user)) * dwell_mean[user]
    gap = np.where(is_start, 3600.0 + rng.exponential(2 * 86400.0, len(user)), 0.0)
    # Seconds since the user's first view: the dwell of the previous view plus any session gap.
    step = gap + np.concatenate([[0.0], dwell[:-1]])
    first = np.r_[True, user[1:] != user[:-1]]
    step[first] = rng.uniform(0, 30 * 86400.0, first.sum())
    csum = np.cumsum(step)
    seconds = csum - np.maximum.accumulate(np.where(first, csum - step, 0.0))
    session_no = np.cumsum(is_start) - np.maximum.accumulate(np.where(first, np.cumsum(is_start) - 1, 0))
    item = items[mask]
    return pl.DataFrame({
        "u": user, "item": item, "s": session_no - 1, "t_us": (seconds * _US).astype(np.int64),
        "price": catalog["price"][item], "cat": catalog["category"][item],
    })


# --------------------------------------------------------------- sessions and intent


def _sessions(views: pl.DataFrame, cat_effect: np.ndarray, median_price: float, rng) -> pl.DataFrame:
    """One row per session with its observable features, the true propensity and the
    sampled outcome."""
    s = views.group_by("u", "s", maintain_order=True).agg(
        n_views=pl.len(),
        n_carts=pl.col("cart").sum(),
        first_t=pl.col("t_us").first(),
        last_t=pl.col("t_us").last(),
        mean_price=pl.col("price").mean(),
        cat=pl.col("cat").first(),
        last_item=pl.col("item").last(),
        cart_item=pl.col("item").filter(pl.col("cart")).last(),
    )
    n_views = s["n_views"].to_numpy().astype(np.float64)
    dwell = np.where(n_views > 1, (s["last_t"] - s["first_t"]).to_numpy() / _US / np.maximum(n_views - 1, 1), 0.0)
    c = PROPENSITY_COEF
    logit = (
        c["intercept"]
        + c["log1p_views"] * np.log1p(n_views)
        + c["carts"] * np.minimum(s["n_carts"].to_numpy(), 3)
        + c["log1p_dwell_min"] * np.log1p(dwell / 60.0)
        + c["log_price_ratio"] * np.log(s["mean_price"].to_numpy() / median_price)
        + cat_effect[s["cat"].to_numpy()]
    )
    p = 1.0 / (1.0 + np.exp(-logit))
    return s.with_columns(
        mean_dwell_s=pl.Series(dwell), propensity=pl.Series(p), purchased=pl.Series(rng.random(len(p)) < p)
    )


def _events_frame(views: pl.DataFrame, sessions: pl.DataFrame, rng) -> pl.DataFrame:
    """Views, carts (1 s after their view) and purchases (the last carted item, else the
    last viewed one, shortly after the session) in the canonical schema, raw user ids."""
    view = views.select("u", "s", "item", "t_us", event_type=pl.lit("view"))
    cart = views.filter(pl.col("cart")).select("u", "s", "item", pl.col("t_us") + _US, event_type=pl.lit("cart"))
    bought = sessions.filter(pl.col("purchased"))
    delay = (5 + np.minimum(rng.exponential(120.0, bought.height), 1800.0)) * _US
    buy = bought.select(
        "u", "s", item=pl.coalesce("cart_item", "last_item"),
        t_us=pl.col("last_t") + pl.Series(delay.astype(np.int64)), event_type=pl.lit("purchase"),
    )
    return pl.concat([view, cart, buy], how="vertical_relaxed")


def _canonical(ev: pl.DataFrame, catalog: dict, n_items: int) -> pl.DataFrame:
    """Raw string ids (zero-padded, so string order is numeric order), UTC timestamps,
    sorted by user and time as ``read_events`` returns them."""
    ev = ev.sort("u", "t_us", maintain_order=True)
    item_width = len(str(max(n_items - 1, 1)))
    user = pl.lit("u") + pl.col("u").cast(pl.Utf8).str.zfill(6)
    return ev.select(
        user_id=user,
        item_id=pl.lit("i") + pl.col("item").cast(pl.Utf8).str.zfill(item_width),
        timestamp=(pl.lit(int(START.timestamp() * _US)) + pl.col("t_us")).cast(pl.Datetime("us", "UTC")),
        event_type=pl.col("event_type"),
        session_id=user + pl.lit("-") + pl.col("s").cast(pl.Utf8),
        price=pl.Series(catalog["price"])[ev["item"]],
        quantity=pl.lit(1.0),
        category=pl.lit("c") + pl.Series(catalog["category"])[ev["item"]].cast(pl.Utf8),
    )


def simulate_shop(
    n_users: int = 1000,
    n_items: int = 200,
    n_categories: int = 10,
    events_per_user: int = 30,
    seed: int = 0,
    *,
    follow_prob: float = 0.6,
    session_len: float = 5.0,
    cart_prob: float = 0.12,
) -> SimulatedShop:
    """Simulate a shop with planted tastes, successors and purchase intent (module docs).

    Args:
        n_users, n_items, n_categories: sizes.
        events_per_user: about this many events (views, carts, purchases) per user.
        seed: everything is drawn from ``numpy.random.default_rng(seed)``.
        follow_prob: probability that the next view in a session is the planted successor.
        session_len: mean number of views per session.
        cart_prob: probability that a view is followed by adding the item to the cart.

    Example:
        >>> shop = simulate_shop(n_users=20, n_items=30, n_categories=3, seed=2)
        >>> shop.events.columns
        ['user_id', 'item_id', 'timestamp', 'event_type', 'session_id', 'price', 'quantity', 'category']
        >>> shop.events["user_id"][0], len(shop.truth.user_ids)
        ('u000000', 20)
    """
    rng = np.random.default_rng(seed)
    catalog = _catalog(rng, n_items, n_categories)
    taste = rng.dirichlet(np.full(n_categories, TASTE_PRIOR), size=n_users)
    lengths = np.maximum(rng.poisson(events_per_user / (1.0 + cart_prob) - 0.3, n_users), 3)
    items, starts = _view_matrix(rng, taste, catalog, lengths, follow_prob, session_len)
    views = _view_frame(rng, items, starts, catalog)
    views = views.with_columns(cart=pl.Series(rng.random(views.height) < cart_prob))
    cat_effect = rng.normal(0.0, 0.5, n_categories)
    sessions = _sessions(views, cat_effect, float(np.median(catalog["price"])), rng)
    events = _canonical(_events_frame(views, sessions, rng), catalog, n_items)
    user_ids = [f"u{u:06d}" for u in range(n_users)]
    item_width = len(str(max(n_items - 1, 1)))
    truth_sessions = sessions.select(
        session_id=pl.lit("u") + pl.col("u").cast(pl.Utf8).str.zfill(6) + pl.lit("-") + pl.col("s").cast(pl.Utf8),
        user_id=pl.lit("u") + pl.col("u").cast(pl.Utf8).str.zfill(6),
        n_views="n_views", n_carts="n_carts", mean_dwell_s="mean_dwell_s", mean_price="mean_price",
        category=pl.lit("c") + pl.col("cat").cast(pl.Utf8), propensity="propensity", purchased="purchased",
    )
    truth = ShopTruth(
        user_ids=user_ids,
        item_ids=[f"i{i:0{item_width}d}" for i in range(n_items)],
        user_taste=taste,
        item_category=catalog["category"],
        item_price=catalog["price"],
        next_item=catalog["next_item"],
        follow_prob=follow_prob,
        category_effect=cat_effect,
        sessions=truth_sessions,
        item_weight=_item_weights(catalog),
        session_len=session_len,
    )
    return SimulatedShop(events=events, truth=truth)


def _item_weights(catalog: dict) -> np.ndarray:
    """P(item | category) of :func:`_fresh_items`: rank ``floor(size x U^2)``, so rank r has
    probability ``sqrt((r + 1) / size) - sqrt(r / size)``."""
    w = np.zeros(len(catalog["category"]))
    for m in catalog["members"]:
        r = np.arange(len(m))
        w[m] = np.sqrt((r + 1) / len(m)) - np.sqrt(r / len(m))
    return w


# -------------------------------------------------------------------- fast 10M path


def _chain_items(rng, n: int, chain_start: np.ndarray, next_item: np.ndarray, n_items: int) -> np.ndarray:
    """Items along chains: a chain starts with a popularity-skewed fresh draw and then
    follows the planted successors. Vectorized by the offset inside the chain: offset j
    copies ``next_item`` of offset j - 1, so the loop runs over chain lengths, not events."""
    fresh = (n_items * rng.random(n) ** 3).astype(np.int64)
    pos = np.arange(n)
    offset = pos - np.maximum.accumulate(np.where(chain_start, pos, 0))
    items = np.where(chain_start, fresh, -1)
    order = np.argsort(offset, kind="stable")
    bounds = np.searchsorted(offset[order], np.arange(offset.max() + 2))
    for j in range(1, int(offset.max()) + 1):
        at = order[bounds[j] : bounds[j + 1]]
        items[at] = next_item[items[at - 1]]
    return items


def _events_chunk(seed: int, chunk: int, users: np.ndarray, counts: np.ndarray, catalog: dict,
                  follow_prob: float, session_len: float) -> pl.DataFrame:
    rng = np.random.default_rng([seed, chunk])
    user = np.repeat(users, counts)
    n = len(user)
    first = np.r_[True, user[1:] != user[:-1]] if n else np.zeros(0, bool)
    is_start = first | (rng.random(n) < 1.0 / session_len)
    item = _chain_items(rng, n, is_start | (rng.random(n) >= follow_prob), catalog["next_item"], len(catalog["price"]))
    step = np.where(is_start, 3600.0 + rng.exponential(2 * 86400.0, n), 2.0 + rng.exponential(45.0, n))
    step[first] = rng.uniform(0, 30 * 86400.0, first.sum())
    csum = np.cumsum(step)
    seconds = csum - np.maximum.accumulate(np.where(first, csum - step, 0.0))
    ns = np.cumsum(is_start)
    session = ns - np.maximum.accumulate(np.where(first, ns, 0))
    kind = np.searchsorted(np.array([0.9, 0.97]), rng.random(n), side="right")
    user_s = pl.lit("u") + pl.Series(user).cast(pl.Utf8).str.zfill(8)
    return pl.select(
        user_id=user_s,
        item_id=pl.lit("i") + pl.Series(item).cast(pl.Utf8),
        timestamp=pl.Series((int(START.timestamp()) + seconds) * _US).cast(pl.Int64).cast(pl.Datetime("us", "UTC")),
        event_type=pl.Series(np.array(["view", "cart", "purchase"])[kind]),
        session_id=user_s + pl.lit("-") + pl.Series(session).cast(pl.Utf8),
        price=pl.Series(catalog["price"][item]),
        quantity=pl.lit(1.0),
        category=pl.lit("c") + pl.Series(catalog["category"][item]).cast(pl.Utf8),
    )


def simulate_events(
    n_events: int,
    seed: int = 0,
    *,
    events_per_user: int = 30,
    n_items: int | None = None,
    n_categories: int = 50,
    follow_prob: float = 0.5,
    session_len: float = 6.0,
    chunk_events: int = 2_000_000,
) -> pl.DataFrame:
    """Exactly ``n_events`` canonical events, fast: for ingest benchmarks at 10M scale.

    Users get multinomial event counts (about ``events_per_user`` each); items follow
    planted successor chains (``follow_prob``) from popularity-skewed fresh draws; about
    90% views, 7% carts, 3% purchases. Raw ids are zero-padded (string order = numeric
    order), rows are sorted by user and time. Work is done in chunks of users of about
    ``chunk_events`` events, so temporary memory stays bounded beside the result.

    Example:
        >>> ev = simulate_events(1000, seed=3)
        >>> ev.height, ev["user_id"].is_sorted(), ev.columns[:4]
        (1000, True, ['user_id', 'item_id', 'timestamp', 'event_type'])
    """
    rng = np.random.default_rng(seed)
    n_users = max(1, n_events // max(events_per_user, 1))
    n_items = n_items or max(10, n_events // 100)
    next_item = np.empty(n_items, dtype=np.int64)
    cycle = rng.permutation(n_items)
    next_item[cycle] = np.roll(cycle, -1)
    catalog = {
        "next_item": next_item,
        "price": np.round(np.exp(rng.normal(3.0, 0.8, n_items)), 2),
        "category": rng.integers(0, n_categories, n_items),
    }
    counts = rng.multinomial(n_events, np.full(n_users, 1.0 / n_users))
    cuts = np.searchsorted(np.cumsum(counts), np.arange(chunk_events, n_events, chunk_events))
    bounds = np.unique(np.r_[0, cuts, n_users])
    parts = [
        _events_chunk(seed, k, np.arange(lo, hi), counts[lo:hi], catalog, follow_prob, session_len)
        for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))
    ]
    return pl.concat(parts) if parts else _events_chunk(seed, 0, np.zeros(0, np.int64), np.zeros(0, np.int64),
                                                        catalog, follow_prob, session_len)


def simulate_market(*args, **kwargs):
    """The price/demand market of :func:`shopml.data.market.simulate_market` (same arguments).

    Imported on call, so this module works without the pricing code.

    Example (not run): ``m = simulate_market(n_items=5, n_stores=4, n_weeks=10, seed=1)``
    """
    from shopml.data.market import simulate_market as _simulate_market

    return _simulate_market(*args, **kwargs)
