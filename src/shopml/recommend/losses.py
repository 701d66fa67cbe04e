"""Full-catalogue cross-entropy computed in row chunks, so the ``[targets x items]`` logits of
a whole batch never exist at once.

A SASRec batch on Beauty holds up to 12,800 targets; their logits over 12,101 items are
620 MB, and autograd keeps the logits, the softmax and their gradient alive together (the
2.5 GB peak of the benchmark). :func:`chunked_cross_entropy` walks the rows in chunks of at
most ``max_elements`` logits, and for each chunk computes the loss *and* its gradients with
respect to the states, the item weights, the bias and the repeat gate in the same pass
(the gradient of softmax cross-entropy is ``softmax - onehot``). Backward only scales the saved
gradients, so the peak is one chunk's logits. The result equals ``F.cross_entropy`` of the full
logits to float rounding (tests check values and gradients).

The optional *repeat term* adds ``gate[t]`` to the logit of every distinct item in row ``t``'s
history (``repeat_idx``, 0-based item indices, -1 = none): the history-aware head of SASRec.

Example:
    >>> import torch
    >>> h, w = torch.randn(5, 4, requires_grad=True), torch.randn(7, 4)
    >>> t = torch.tensor([0, 3, 6, 2, 1])
    >>> a = chunked_cross_entropy(h, w, None, t, max_elements=14)
    >>> bool(torch.allclose(a, torch.nn.functional.cross_entropy(h @ w.T, t)))
    True
"""

from __future__ import annotations

import torch

__all__ = ["chunked_cross_entropy", "distinct_history"]


class _ChunkedCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w, b, targets, repeat_idx, gate, max_elements: int):
        n_rows, n_items = h.shape[0], w.shape[0]
        step = max(1, max_elements // max(n_items, 1))
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        dh = torch.zeros_like(h) if need_h else None
        dw = torch.zeros_like(w) if need_w else None
        db = torch.zeros_like(b) if b is not None and ctx.needs_input_grad[2] else None
        dg = torch.zeros_like(gate) if gate is not None and ctx.needs_input_grad[5] else None
        total = h.new_zeros(())
        scale = 1.0 / max(n_rows, 1)
        for s in range(0, n_rows, step):
            hc, tc = h[s : s + step], targets[s : s + step]
            logits = hc @ w.T
            if b is not None:
                logits += b
            if gate is not None:
                idx = repeat_idx[s : s + step]
                add = gate[s : s + step, None].expand_as(idx).masked_fill(idx < 0, 0.0)
                logits.scatter_add_(1, idx.clamp(min=0), add)
            lse = torch.logsumexp(logits, dim=1)
            total += (lse - logits.gather(1, tc[:, None])[:, 0]).sum()
            grad = logits.sub_(lse[:, None]).exp_()  # softmax, in place of the logits
            grad[torch.arange(len(tc)), tc] -= 1.0
            grad *= scale
            if dh is not None:
                dh[s : s + step] = grad @ w
            if dw is not None:
                dw.addmm_(grad.T, hc)
            if db is not None:
                db += grad.sum(0)
            if dg is not None:
                dg[s : s + step] = (grad.gather(1, idx.clamp(min=0)) * (idx >= 0)).sum(1)
        ctx.save_for_backward(*(g if g is not None else torch.empty(0) for g in (dh, dw, db, dg)))
        ctx.has = (dh is not None, dw is not None, db is not None, dg is not None)
        return total * scale

    @staticmethod
    def backward(ctx, grad_out):
        saved = ctx.saved_tensors
        dh, dw, db, dg = (g * grad_out if has else None for g, has in zip(saved, ctx.has))
        return dh, dw, db, None, None, dg, None


def chunked_cross_entropy(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, targets: torch.Tensor,
                          repeat_idx: torch.Tensor | None = None, gate: torch.Tensor | None = None, *,
                          max_elements: int = 1 << 23) -> torch.Tensor:
    """Mean cross-entropy of logits ``h @ w.T + b`` (+ the repeat term) against ``targets``
    (0-based columns), ``max_elements`` logits at a time. ``h [T, d]``, ``w [N, d]``, ``b [N]``
    or None, ``repeat_idx [T, L]`` (-1 = none) with ``gate [T]``, or both None."""
    if (repeat_idx is None) != (gate is None):
        raise ValueError("repeat_idx and gate go together")
    return _ChunkedCE.apply(h, w, b, targets, repeat_idx, gate, int(max_elements))


def distinct_history(prefix: torch.Tensor) -> torch.Tensor:
    """Each row's distinct non-zero item indices, 0-based, padded with -1 (duplicates and the
    0 padding become -1), for the repeat term. ``prefix [T, L]`` holds 1-based items.

    Example:
        >>> distinct_history(torch.tensor([[0, 3, 3, 1]])).tolist()
        [[-1, 0, 2, -1]]
    """
    s, _ = prefix.sort(dim=1)
    dup = torch.zeros_like(s, dtype=torch.bool)
    dup[:, 1:] = s[:, 1:] == s[:, :-1]
    return torch.where(dup | (s == 0), torch.full_like(s, -1), s - 1)
