"""From scores to purchase probabilities, and from probabilities to expected value.

* :func:`fit_temperature`: the temperature ``T`` with P(next = item | history) =
  softmax(score / T) over the catalogue, fitted by maximum likelihood on validation targets
  (temperature scaling, Guo et al. 2017: one parameter, so the ranking never changes).
* :func:`value_keys`: the ranking key of the revenue and profit objectives,
  ``log P + blend * log(value)``, where value is the price (revenue) or price - unit cost
  (profit), times the item's expected units per purchase where the log has quantities. ``blend = 0`` is relevance ranking and ``blend = 1`` ranks by expected value
  ``P x value``; items with no known price or no positive value rank after every item with one.
* :func:`relevance_order`: the slate those keys chose, shown in descending P. Expected value
  is a property of the slate's set; its order is what the user reads first, so the items they
  most likely want go on top (``order="relevance"``, the default of the value objectives).

Example:
    >>> import torch
    >>> scores = torch.tensor([[float("-inf"), 2.0, 1.0]])
    >>> p = probabilities(scores, 1.0)
    >>> round(float(p[0, 1]), 4), float(p[0, 0])
    (0.7311, 0.0)
    >>> value_keys(p, torch.tensor([float("nan"), 1.0, 10.0]), blend=1.0).argmax().item()
    2
"""

from __future__ import annotations

import math

import numpy as np
import torch

from shopml.errors import ConfigError

__all__ = ["OBJECTIVES", "ORDERS", "fit_temperature", "relevance_order", "relevance_first", "probabilities", "value_keys", "item_values", "slate_calibration"]

OBJECTIVES = ("relevance", "revenue", "profit")
# Order inside a revenue or profit slate: by P (the user's likely wants first) or by the
# ranking key itself. On the simulated shop, at the validation-chosen blend, the relevance
# order cost 1.4% of NDCG@10 where the key order cost 8.6%, for the same expected profit
# (`shopml benchmark revenue`, test item).
ORDERS = ("relevance", "value")


def probabilities(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(scores / T) per row; columns at ``-inf`` (padding, excluded) get 0."""
    return torch.softmax(scores / temperature, dim=1)


def fit_temperature(score_fn, hist: torch.Tensor, users: torch.Tensor, targets: torch.Tensor,
                    chunk: int = 256) -> float:
    """The T that maximizes the likelihood of ``targets`` (item index per row) under
    softmax(score / T) of the scores after ``hist``; a few hundred to a few thousand validation
    rows are plenty for one parameter.

    The negative log-likelihood is convex in beta = 1/T, with gradient E_p[s] - s_target and
    curvature Var_p[s], so a few Newton steps find it. Each step walks the rows in chunks
    under ``no_grad``: the memory is one chunk's scores (an autograd fit over 2,000 Beauty rows
    held about 1 GB)."""
    parts = []
    with torch.no_grad():
        for s in range(0, len(hist), chunk):
            sc = score_fn(hist[s : s + chunk], users[s : s + chunk]).double()
            parts.append((sc, sc.gather(1, targets[s : s + chunk].view(-1, 1))[:, 0]))

    def stats(beta: float) -> tuple[float, float, float]:
        nll = grad = curv = 0.0
        for sc, st in parts:
            z = torch.where(torch.isfinite(sc), sc * beta, torch.full_like(sc, -math.inf))
            lse = torch.logsumexp(z, dim=1)
            p = torch.exp(z - lse[:, None])
            fin = torch.where(torch.isfinite(sc), sc, torch.zeros_like(sc))
            mean = (p * fin).sum(1)
            nll += float((lse - beta * st).sum())
            grad += float((mean - st).sum())
            curv += float(((p * fin * fin).sum(1) - mean * mean).sum())
        return nll, grad, curv

    beta = 1.0
    nll, grad, curv = stats(beta)
    for _ in range(50):
        step = grad / curv if curv > 0 else math.copysign(0.5 * beta, grad)
        new = beta - step
        while new <= 0 or not math.isfinite(new):  # stay positive
            step /= 2
            new = beta - step
        n2, g2, c2 = stats(new)
        while n2 > nll and abs(step) > 1e-12:  # backtrack to keep the likelihood rising
            step /= 2
            new = beta - step
            n2, g2, c2 = stats(new)
        converged = abs(new - beta) < 1e-9 * max(1.0, beta)
        beta, nll, grad, curv = new, n2, g2, c2
        if converged:
            break
    t = 1.0 / beta
    return t if math.isfinite(t) and t > 0 else 1.0


def item_values(objective: str, prices: np.ndarray, unit_costs: np.ndarray | None,
                assumed_margin: float | None, quantities: np.ndarray | None = None) -> torch.Tensor:
    """Per item ``[n + 1]`` value of a purchase: the price (revenue), or the price minus the
    unit cost (profit), the cost being ``price x (1 - assumed_margin)`` where it is not known;
    times the item's expected units per purchase where ``quantities`` are given.

    A shop that sells by the dozen earns price x units on a line, not the unit price: ranking
    by P x unit price alone pushed expensive single items above the cheap ones its customers
    buy in bulk. An item with no known quantity (a new one) gets the median of the known ones,
    so it is neither favoured nor buried by the scale.

    >>> item_values("revenue", np.array([np.nan, 2.0, 5.0, 1.0]), None, None,
    ...             np.array([np.nan, 12.0, 1.0, np.nan])).tolist()[1:]
    [24.0, 5.0, 6.5]
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    price = torch.as_tensor(prices, dtype=torch.float64)
    units = _units(quantities, len(price))
    if objective == "revenue":
        return price * units
    cost = torch.full_like(price, float("nan")) if unit_costs is None else torch.as_tensor(unit_costs, dtype=torch.float64)
    if assumed_margin is not None:
        if not 0 <= assumed_margin < 1:
            raise ConfigError(f"assumed_margin must be in [0, 1), got {assumed_margin}")
        cost = torch.where(torch.isnan(cost), price * (1 - assumed_margin), cost)
    return (price - cost) * units


def _units(quantities: np.ndarray | None, n: int) -> torch.Tensor:
    if quantities is None:
        return torch.ones(n, dtype=torch.float64)
    q = np.asarray(quantities, dtype=np.float64)
    known = np.isfinite(q) & (q > 0)
    return torch.from_numpy(np.where(known, q, float(np.median(q[known])) if known.any() else 1.0))


def value_keys(p: torch.Tensor, values: torch.Tensor, blend: float) -> torch.Tensor:
    """Ranking key ``log P + blend x log(value)``; rows ``[B, n + 1]``. Items without a
    positive value keep their relevance order, below every item that has one."""
    if not 0 <= blend <= 1:
        raise ConfigError(f"blend must be in [0, 1], got {blend}")
    logp = torch.log(p.double().clamp(min=1e-300))
    logp = torch.where(p > 0, logp, torch.full_like(logp, -math.inf))
    if blend == 0:
        return logp
    good = (values > 0) & torch.isfinite(values)
    lv = torch.where(good, torch.log(values.clamp(min=1e-300)), torch.zeros_like(values))
    return torch.where(good, logp + blend * lv, logp - 1e6)


def relevance_order(slates: torch.Tensor, rel: torch.Tensor, n_fixed: int = 0) -> torch.Tensor:
    """``slates [B, k]`` (item indices) with the items after the first ``n_fixed`` (the pins)
    in descending ``rel [B, n + 1]`` (log P, boosts added); ties keep the slate's order.

    >>> relevance_order(torch.tensor([[3, 1, 2]]), torch.tensor([[0.0, 0.9, 0.5, 0.1]])).tolist()
    [[1, 2, 3]]
    >>> relevance_order(torch.tensor([[3, 1, 2]]), torch.tensor([[0.0, 0.9, 0.5, 0.1]]), 1).tolist()
    [[3, 1, 2]]
    """
    head, tail = slates[:, :n_fixed], slates[:, n_fixed:]
    order = rel.gather(1, tail).argsort(dim=1, descending=True, stable=True)
    return torch.cat([head, tail.gather(1, order)], dim=1)


def relevance_first(slates: list, p: torch.Tensor, rules: list, pins: list, index: dict) -> list:
    """:func:`relevance_order` of each value slate of a request (``slates``: one index tensor
    per row, pinned items first; ``p [B, n + 1]``; ``rules``: one Rules or None per row, whose
    boosts are added to log P; ``pins``: per row the set of pinned item indices)."""
    out = []
    for b, idx in enumerate(slates):
        rel = torch.log(p[b: b + 1].double().clamp(min=1e-300))
        if rules[b] is not None:
            rules[b].boosted(rel, index)
        n_pin = next((n for n, i in enumerate(idx.tolist()) if i not in pins[b]), len(idx))
        out.append(relevance_order(idx[None, :], rel, n_pin)[0])
    return out


def slate_calibration(model, sequences, targets, *, k: int = 10, batch: int = 1024, bins: int = 10) -> dict:
    """Expected calibration error of the top-``k`` slates, history excluded (the service's
    default): every (user, slate item) pair with its probability P(next = item | history) and
    whether it is the user's target (``targets``, one item index per row of ``sequences``,
    0 = none). Reported at T = 1 (the raw softmax) and at the model's fitted temperature, with
    ``reliability``: ``bins`` quantile bins of the calibrated probability (mean predicted,
    observed hit rate, count), the reliability diagram's points.

    Example (not run, needs a fitted model): ``slate_calibration(m, hist, test)["ece@10"]``
    """
    from shopml.evaluation.metrics import expected_calibration_error
    from shopml.recommend.base import padded_rows

    indptr, items = np.asarray(sequences.indptr), np.asarray(sequences.items)
    targets = np.asarray(targets)
    rows_all = np.flatnonzero(targets > 0)
    temp = float(getattr(model, "temperature_", 1.0))
    own = list(sequences.user_ids) == list(getattr(model, "user_ids_", []))
    ys, p_raw, p_cal = [], [], []
    for s in range(0, len(rows_all), batch):
        rows = rows_all[s : s + batch]
        width = max(int((indptr[rows + 1] - indptr[rows]).max()), 1)
        hist = padded_rows(indptr, items, rows, width)
        users = torch.from_numpy(rows + 1 if own else np.zeros(len(rows), dtype=np.int64))
        scores = model.score_batch(hist, users)
        keys = scores.clone().scatter_(1, hist, float("-inf"))  # history excluded from the slate
        top = keys.topk(k, dim=1).indices
        ys.append((top == torch.from_numpy(targets[rows])[:, None]).numpy().ravel())
        for t, out in ((1.0, p_raw), (temp, p_cal)):
            out.append(probabilities(scores, t).gather(1, top).numpy().ravel())
    y, raw, cal = (np.concatenate(a) if a else np.zeros(0) for a in (ys, p_raw, p_cal))
    rel = {"predicted": [], "observed": [], "count": []}
    if cal.size:
        edges = np.unique(np.quantile(cal, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges, cal, side="right") - 1, 0, max(len(edges) - 2, 0))
        for b in np.unique(which):
            m = which == b
            rel["predicted"].append(float(cal[m].mean()))
            rel["observed"].append(float(y[m].mean()))
            rel["count"].append(int(m.sum()))
    return {f"ece@{k}_raw": expected_calibration_error(y, raw), f"ece@{k}": expected_calibration_error(y, cal),
            "reliability": rel,
            "temperature": temp, f"mean_p@{k}": float(cal.mean()) if cal.size else float("nan"),
            f"hit_share@{k}": float(y.mean()) if y.size else float("nan")}
