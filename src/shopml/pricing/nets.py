"""Neural demand network whose demand is non-increasing in own price by construction.

``MonotoneDemandNet`` predicts log units as

    log q(p, x) = f(x) + g(s, x),      s = -(log p - mu) / sd   (sd > 0)

* ``f(x)``: an unrestricted MLP of the context x (item/brand, store, week, promotion,
  competitor prices, demographics): the demand level.
* ``g(s, x) = a(x) * s + sum_k v_k * tanh(u_k(x) * s + b_k(x))`` with
  ``a(x) = softplus(.) >= 0``, ``v_k = softplus(.) >= 0`` and ``u_k(x) = softplus(.) >= 0``.

Why monotone: dg/ds = a + sum_k v_k * u_k * (1 - tanh^2(.)) is a sum of products of
non-negative factors, so dg/ds >= 0 for every x and every s. The context enters only
through non-negative multipliers and additive offsets, never through a weight that could
flip the sign. Since s decreases in p, log q (and q = exp(log q)) is non-increasing in p,
whatever the weights are. No penalty, no projection: any trained or untrained network
satisfies it (tested on random inputs). The elasticity d log q / d log p = -(dg/ds) / sd
is therefore always <= 0 and varies by item and by price (the tanh units bend the curve).

Example:
    >>> import torch
    >>> net = MonotoneDemandNet([5, 3], n_numeric=2)
    >>> cats, nums = torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2)
    >>> s = torch.tensor([-1.0, 0.0, 1.0, 2.0])  # higher s = lower price
    >>> bool((net(cats, nums, s).diff() >= 0).all())
    True
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MonotoneDemandNet"]


class MonotoneDemandNet(nn.Module):
    """``forward(cats[B, C] long, nums[B, D] float, s[B]) -> log units [B]``.

    ``cardinalities``: number of codes of each categorical column (code 0 = unseen value).
    ``n_numeric``: number of standardized numeric context columns. ``price_units``: tanh
    units of the monotone price sub-network.
    """

    def __init__(self, cardinalities: list[int], n_numeric: int, *, dim: int = 8, hidden: int = 32,
                 price_units: int = 8):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(c, dim) for c in cardinalities)
        n_in = dim * len(cardinalities) + n_numeric
        self.context = nn.Sequential(nn.Linear(max(n_in, 1), hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.level = nn.Linear(hidden, 1)
        # Heads producing a(x), u_k(x) (both passed through softplus) and b_k(x).
        self.slope = nn.Linear(hidden, 1)
        self.unit_scale = nn.Linear(hidden, price_units)
        self.unit_shift = nn.Linear(hidden, price_units)
        self.unit_weight = nn.Parameter(torch.full((price_units,), -2.0))
        # Start near a constant elasticity of about -2 (softplus(1.9) ~ 2.04) so training
        # begins in the range retail elasticities live in.
        nn.init.constant_(self.slope.bias, 1.9)

    def encode(self, cats: torch.Tensor, nums: torch.Tensor) -> torch.Tensor:
        parts = [emb(cats[:, j]) for j, emb in enumerate(self.embeddings)] + [nums]
        x = torch.cat(parts, dim=1) if parts else nums
        if x.shape[1] == 0:
            x = torch.zeros(x.shape[0], 1)
        return self.context(x)

    def price_effect(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """g(s, x): non-decreasing in s for every context h (see the module docstring)."""
        a = F.softplus(self.slope(h)).squeeze(1)
        u = F.softplus(self.unit_scale(h))
        v = F.softplus(self.unit_weight)
        bent = torch.tanh(u * s[:, None] + self.unit_shift(h)) @ v
        return a * s + bent

    def forward(self, cats: torch.Tensor, nums: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.encode(cats, nums)
        return self.level(h).squeeze(1) + self.price_effect(h, s)

    def grid(self, cats: torch.Tensor, nums: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """``forward`` for every (context row, price) pair, ``[rows, prices]``: the context is
        encoded once per row, not once per pair (an optimizer scores hundreds of prices)."""
        h = self.encode(cats, nums)
        a = F.softplus(self.slope(h))  # [r, 1]
        u = F.softplus(self.unit_scale(h))[:, None, :]  # [r, 1, U]
        bent = torch.tanh(u * s[None, :, None] + self.unit_shift(h)[:, None, :]) @ F.softplus(self.unit_weight)
        return self.level(h) + a * s[None, :] + bent
