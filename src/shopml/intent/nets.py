"""Networks of the intent models: :class:`WideDeepIntentNet` (a session's events -> purchase
logit, with a next-item head) and :class:`IntentMLP` (UCI summary features -> purchase logit).

The estimators that train them are in :mod:`shopml.intent.estimator` and
:mod:`shopml.intent.tabular`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["WideDeepIntentNet", "IntentMLP", "EVENT_CODES", "N_STATS"]

EVENT_CODES = {"view": 1, "cart": 2}  # 0 = padding; purchases never enter the input
N_STATS = 5  # columns of the session totals (SessionTensors.stats)


class WideDeepIntentNet(nn.Module):
    """Purchase logit = wide logistic part over standardized session totals + first-category
    bias + an MLP over the GRU's last and mean states; next-item logits tied to the item
    embeddings. The wide part is what the GRU would otherwise have to learn by counting.

    Example:
        >>> net = WideDeepIntentNet(n_items=5, n_categories=2, dim=4)
        >>> items = torch.tensor([[0, 1, 2]]); types = torch.tensor([[0, 1, 1]])
        >>> net(items, types, torch.zeros(1, 3), torch.zeros(1, N_STATS), torch.tensor([1]))[1].shape
        torch.Size([1])
    """

    def __init__(self, n_items: int, n_categories: int = 0, dim: int = 64, dropout: float = 0.1):
        super().__init__()
        self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.etype = nn.Embedding(len(EVENT_CODES) + 1, dim, padding_idx=0)
        self.dwell = nn.Linear(2, dim)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.deep = nn.Sequential(nn.Linear(2 * dim, dim), nn.ReLU(), nn.Linear(dim, 1))
        self.wide = nn.Linear(N_STATS, 1)
        self.cat_bias = nn.Embedding(n_categories + 1, 1)
        nn.init.zeros_(self.cat_bias.weight)
        # standardization of the wide inputs, set from the training sessions (saved with the weights)
        self.register_buffer("stat_mean", torch.zeros(N_STATS))
        self.register_buffer("stat_std", torch.ones(N_STATS))

    def forward(self, items, types, dwell, stats, first_cat):
        """``items``/``types`` (B, L) right-aligned, 0 = padding; ``dwell`` (B, L) seconds;
        ``stats`` (B, N_STATS); ``first_cat`` (B,). Returns ``(states (B, L, D), logit (B,))``."""
        valid = (types > 0).unsqueeze(-1)
        d = dwell.clamp(min=0)
        dfeat = torch.stack([torch.log1p(d), (d / 60.0).clamp(max=30.0)], dim=-1)
        x = self.item(items) + self.etype(types) + self.dwell(dfeat)
        states, _ = self.gru(self.drop(x * valid))
        mean = (states * valid).sum(1) / valid.sum(1).clamp(min=1)
        deep = self.deep(self.drop(torch.cat([states[:, -1], mean], dim=1))).squeeze(1)
        wide = self.wide((stats - self.stat_mean) / self.stat_std).squeeze(1) + self.cat_bias(first_cat).squeeze(1)
        return states, wide + deep

    def next_item_logits(self, states: torch.Tensor) -> torch.Tensor:
        """Tied next-item scores for (N, D) states."""
        return states @ self.item.weight.T



class IntentMLP(nn.Module):
    """MLP with batch norm and dropout -> one logit (purchase).

    Example:
        >>> IntentMLP(10)(torch.zeros(4, 10)).shape
        torch.Size([4])
    """

    def __init__(self, n_in: int, hidden: int = 64, dropout: float = 0.3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]
