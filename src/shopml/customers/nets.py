"""Networks and per-week features for the customer purchase-forecast RNN.

The model reads one customer's weekly history (purchase days per week, spend, age, recency) and
emits a distribution over the number of purchase days in the *next* week. Forecasting N weeks
ahead samples that distribution and feeds the sample back (Valendin, Reutterer, Platzer & Kalcher
2022, "Customer base analysis with recurrent neural networks", IJRM): the sampled paths give the
expected count, its median and P(any purchase), for any horizon, from one-step training targets
that all lie inside the calibration window.

Example:
    >>> import torch
    >>> net = CustomerGRU(hidden=8, n_classes=5)
    >>> logits, h = net(torch.zeros(3, 4, N_FEATURES))
    >>> tuple(logits.shape), tuple(h.shape)
    ((3, 4, 5), (1, 3, 8))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["CustomerGRU", "WeekTracker", "N_FEATURES"]

N_FEATURES = 8
_LOG40 = math.log(40.0)


class CustomerGRU(nn.Module):
    """GRU over weekly features -> logits over next week's purchase-day count (0..n_classes-1+).

    Args:
        hidden: GRU width.
        n_classes: counts 0..n_classes-2 and one last class for "n_classes-1 or more".
        n_features: width of the per-week feature vector.
    """

    def __init__(self, hidden: int = 32, n_classes: int = 5, n_features: int = N_FEATURES):
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        # The head also sees the raw features: recency/frequency shortcuts train faster than
        # asking the GRU state to carry them.
        self.head = nn.Sequential(nn.Linear(hidden + n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None):
        """x: [B, T, F] -> (logits [B, T, n_classes], last hidden [1, B, hidden])."""
        out, h = self.gru(x, h0)
        return self.head(torch.cat([out, x], -1)), h


@dataclass
class WeekTracker:
    """Running per-customer state that turns weekly counts into model features.

    The same code builds the teacher-forced training inputs and the features of sampled weeks,
    so the two never drift apart. All fields are float tensors of shape [B].
    """

    joined: torch.Tensor
    age: torch.Tensor
    since_last: torch.Tensor
    cum: torch.Tensor
    spend_cum: torch.Tensor

    @classmethod
    def start(cls, n: int) -> "WeekTracker":
        z = torch.zeros(n)
        return cls(z.clone(), z.clone(), z.clone(), z.clone(), z.clone())

    def repeat(self, k: int) -> "WeekTracker":
        """Each customer's state repeated k times (sample paths are customer-major)."""
        return WeekTracker(*(t.repeat_interleave(k) for t in self.astuple()))

    def astuple(self):
        return (self.joined, self.age, self.since_last, self.cum, self.spend_cum)

    def step(self, count: torch.Tensor, spend: torch.Tensor | None = None) -> torch.Tensor:
        """Advance one week with ``count`` purchase days (and ``spend`` dollars; when None, as in
        sampled weeks, the customer's average spend per purchase day so far). Returns [B, F]."""
        bought = count > 0
        avg = self.spend_cum / self.cum.clamp(min=1)
        # A day's spend net of returns can be negative (an expensive item returned on a day of
        # cheap purchases); floored at 0 so that log1p of the average stays finite.
        spend = avg * count if spend is None else spend.clamp(min=0)
        birth = bought & (self.joined == 0)
        was = self.joined > 0
        self.joined = torch.where(bought, torch.ones_like(self.joined), self.joined)
        self.age = torch.where(was, self.age + 1, torch.zeros_like(self.age))
        self.since_last = torch.where(bought, torch.zeros_like(self.age), torch.where(was, self.since_last + 1, self.age))
        self.cum = self.cum + count
        self.spend_cum = self.spend_cum + spend
        avg_now = self.spend_cum / self.cum.clamp(min=1)
        return torch.stack([
            torch.log1p(count),
            self.joined,
            birth.float(),
            # log-scaled: forecasting runs ages/recencies past the window's maximum, and a log
            # scale keeps those inputs near the trained range (78 weeks -> 1.19 vs 39 -> 1.0).
            torch.log1p(self.age) / _LOG40,
            torch.log1p(self.since_last) / _LOG40,
            torch.log1p(self.cum) / 3.0,
            torch.log1p(avg_now) / 5.0,
            self.cum / (self.age + 1.0),
        ], -1)
