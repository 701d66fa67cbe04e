"""The window repeat gate: how much a user's own past items are worth in the next weeks.

A next-item model learns what follows what; a shop's log is judged on what the user buys in
the *coming weeks*, where re-buying is a large share (a quarter of Online Retail's purchases).
SASRec's repeat head sees only its last ``max_len`` events and is trained on the next event,
mostly a basket-mate. The gate adds to every item of the user's **whole** history

    T x (w0 + w1 log(count) + w2 recency),    recency = 1 / (1 + events since its last occurrence)

to the model's scores, with ``(T, w)`` fitted by maximum likelihood of the *validation
window's* purchases (each target item's softmax log-probability, averaged per user). Three
weights and a temperature, chosen on validation data; the test window never steers them.
Items outside the history are untouched, so protocol A (history excluded) does not move.

Example:
    >>> import torch
    >>> f = gate_features(torch.tensor([[0, 2, 3, 2]]), 4)
    >>> f[0, :, 2].tolist(), [round(x, 3) for x in f[0, :, 1].tolist()], f[0, :, 0].tolist()
    ([0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 0.693, 0.0], [0.0, 0.0, 1.0, 1.0])
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["gate_features", "gate_logits", "fit_repeat_gate"]

RIDGE = 1e-3


def gate_features(hist: torch.Tensor, n_cols: int) -> torch.Tensor:
    """``[B, n_cols, 3]``: for every item of each right-aligned history ``hist [B, W]`` (0 =
    padding): in the history (0/1), log of its count, recency; zeros elsewhere."""
    b, width = hist.shape
    hist = hist.long()
    real = (hist > 0).float()
    count = torch.zeros(b, n_cols).scatter_add_(1, hist, real)
    pos = torch.arange(width, dtype=torch.float32).expand(b, width)
    last = torch.full((b, n_cols), -1.0).scatter_reduce_(1, hist, torch.where(hist > 0, pos, -1.0), "amax")
    count[:, 0], last[:, 0] = 0.0, -1.0
    seen = count > 0
    recency = torch.where(seen, 1.0 / (width - last), torch.zeros(()))
    return torch.stack([seen.float(), torch.log(count.clamp(min=1.0)), recency], dim=2)


def gate_logits(hist: torch.Tensor, n_cols: int, gate) -> torch.Tensor:
    """``[B, n_cols]``: the gate's addition to the scores, ``T x features @ w``."""
    t, w = float(gate[0]), torch.tensor([float(x) for x in gate[1:]])
    return t * (gate_features(hist, n_cols) @ w)


def fit_repeat_gate(score_fn, hist: torch.Tensor, users: torch.Tensor, target_indptr: np.ndarray,
                    target_items: np.ndarray, *, steps: int = 200) -> list[float] | None:
    """``[T, w0, w1, w2]`` maximizing the mean (per user) log-probability of each user's
    window targets under ``softmax(scores / T + features @ w)`` (None if not finite). ``hist`` are the users'
    whole histories (right-aligned), ``target_*`` a CSR of their target items per row."""
    with torch.no_grad():
        s = score_fn(hist, users).float()
    finite = torch.isfinite(s)
    finite[:, 0] = False
    scale = float(s[finite].std()) if finite.sum() > 1 else 1.0  # start T at the scores' spread
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    # large but finite for padding and filtered items: -inf / T would give a NaN gradient in T
    s = torch.where(finite, s - s.masked_fill(~finite, 0.0).amax(1, keepdim=True), torch.full_like(s, -1e4))
    feats = gate_features(hist, s.shape[1])
    rows = np.repeat(np.arange(len(target_indptr) - 1), np.diff(target_indptr))
    r, c = torch.from_numpy(rows), torch.from_numpy(np.asarray(target_items, dtype=np.int64))
    per_user = torch.from_numpy(1.0 / np.diff(target_indptr)[rows]).float()
    theta = torch.tensor([float(np.log(scale)), 0.0, 0.0, 0.0], dtype=torch.float32, requires_grad=True)
    # Adam, not L-BFGS: four parameters, and a line search can overshoot when the window's
    # targets sit far down a model's scores
    opt = torch.optim.Adam([theta], lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        logits = s / theta[0].clamp(-12.0, 12.0).exp() + feats @ theta[1:]
        logp = torch.log_softmax(logits, dim=1)[r, c]
        # a small ridge keeps the weights finite when the window's targets are all re-buys
        loss = -(logp * per_user).sum() / (len(target_indptr) - 1) + RIDGE * (theta[1:] ** 2).sum()
        loss.backward()
        opt.step()
    theta = theta.detach()
    out = [float(theta[0].clamp(-12.0, 12.0).exp()), *(float(x) for x in theta[1:])]
    return out if all(np.isfinite(out)) else None
