"""From scores to purchase probabilities, and from probabilities to expected value.

* :func:`fit_temperature`: the temperature ``T`` with P(next = item | history) =
  softmax(score / T) over the catalogue, fitted by maximum likelihood on validation targets
  (temperature scaling, Guo et al. 2017: one parameter, so the ranking never changes).
* :func:`value_keys`: the ranking key of the revenue and profit objectives,
  ``log P + blend * log(value)``, where value is the price (revenue) or price - unit cost
  (profit). ``blend = 0`` is relevance ranking and ``blend = 1`` ranks by expected value
  ``P x value``; items with no known price or no positive value rank after every item with one.

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

__all__ = ["OBJECTIVES", "fit_temperature", "probabilities", "value_keys", "item_values"]

OBJECTIVES = ("relevance", "revenue", "profit")


def probabilities(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(scores / T) per row; columns at ``-inf`` (padding, excluded) get 0."""
    return torch.softmax(scores / temperature, dim=1)


def fit_temperature(score_fn, hist: torch.Tensor, users: torch.Tensor, targets: torch.Tensor) -> float:
    """The T that maximizes the likelihood of ``targets`` (item index per row) under
    softmax(score / T) of the scores after ``hist``; a few hundred to a few thousand validation
    rows are plenty for one parameter."""
    with torch.no_grad():
        s = score_fn(hist, users).double()
    s = torch.where(torch.isfinite(s), s, torch.full_like(s, -1e30))  # keep -inf out of the gradients
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def nll():
        opt.zero_grad()
        logp = torch.log_softmax(s / log_t.exp(), dim=1)
        loss = -logp.gather(1, targets.view(-1, 1)).mean()
        loss.backward()
        return loss

    opt.step(nll)
    t = float(log_t.exp())
    return t if math.isfinite(t) and t > 0 else 1.0


def item_values(objective: str, prices: np.ndarray, unit_costs: np.ndarray | None,
                assumed_margin: float | None) -> torch.Tensor:
    """Per item ``[n + 1]`` value of a purchase: the price (revenue), or the price minus the
    unit cost (profit), the cost being ``price x (1 - assumed_margin)`` where it is not known."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    price = torch.as_tensor(prices, dtype=torch.float64)
    if objective == "revenue":
        return price
    cost = torch.full_like(price, float("nan")) if unit_costs is None else torch.as_tensor(unit_costs, dtype=torch.float64)
    if assumed_margin is not None:
        if not 0 <= assumed_margin < 1:
            raise ConfigError(f"assumed_margin must be in [0, 1), got {assumed_margin}")
        cost = torch.where(torch.isnan(cost), price * (1 - assumed_margin), cost)
    return price - cost


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
