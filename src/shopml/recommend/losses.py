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

The optional *repeat term* adds ``repeat_val[t, j]`` to the logit of item ``repeat_idx[t, j]``
(0-based, -1 = none), one entry per distinct item of row ``t``'s history: the history-aware
head of SASRec (:func:`repeat_features` gives the entries and what the head sees of them).

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

__all__ = ["chunked_cross_entropy", "repeat_features"]


# bf16 chunks are padded to a multiple of this many rows (see _Products).
_ROWS = 64


class _Products:
    """The chunk's three matrix products: logits ``w @ h.T``, the state gradient
    ``g.T @ w`` and the item gradient ``g @ h``, in float32 or on bfloat16 copies.

    The chunk's logits are held transposed, ``[items, rows]``, in one buffer reused by every
    chunk: ``w @ h.T`` fills it in place (this machine's MKL runs it faster than ``h @ w.T``,
    whose inner width of 64 against 12,101 columns is its slow case), and the two gradient
    products read it without a copy.

    bf16: the products read bfloat16 copies of the states and the item table (this CPU's bf16
    dot products run at twice the fp32 rate); the softmax, the loss and the gradient sums stay
    in float32. Their outputs land in buffers allocated once per call (a fresh 8 MB block per
    chunk raised the Beauty benchmark's peak RSS from 1.76 to 2.37 GB). A chunk's rows are
    also zero-padded to a multiple of ``_ROWS`` (64), so the bf16 products take a handful of
    shapes: oneDNN caches a kernel (and its scratch memory) per shape, and a last chunk of a
    new length in every batch grew the process by about 1.5 MB a batch (400 batches: 0.5 to
    1.2 GB RSS, against a flat 0.5 GB in float32).
    """

    def __init__(self, h, w, step: int, need_h: bool, need_w: bool, bf16: bool):
        self.bf16, self.w, self.step, n_items = bf16, w, step, w.shape[0]
        self.buf = h.new_empty(n_items * step)
        if not bf16:
            self.wm, self.hm = w, h
            return
        self.wm = w.bfloat16()
        # Zero rows past the end: a last chunk of r rows reads up to r + 63.
        self.hm = h.new_zeros((h.shape[0] + _ROWS, h.shape[1]), dtype=torch.bfloat16)
        self.hm[: h.shape[0]] = h
        self.low = self.wm.new_empty(n_items * step)
        self.dw_part = self.wm.new_empty(w.shape) if need_w else None
        self.dh_part = self.wm.new_empty(step, h.shape[1]) if need_h else None

    def _padded(self, s: int, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """bf16: the chunk's states ``[rp, d]`` (r rounded up to ``_ROWS``), its float32
        logits ``[items, rp]`` and their bfloat16 twin, both in the reused buffers."""
        rp = min(self.step, -(-r // _ROWS) * _ROWS) if r < self.step else r
        n_items = self.w.shape[0]
        return (self.hm[s : s + rp], self.buf[: n_items * rp].view(n_items, rp),
                self.low[: n_items * rp].view(n_items, rp))

    def logits(self, s: int, r: int, bias):
        """The logits ``[items, r]`` (+ the bias) of rows ``s : s + r``."""
        if self.bf16:
            hc, full, low = self._padded(s, r)
            full.copy_(torch.mm(self.wm, hc.T, out=low))
            if bias is not None:
                full.add_(bias)
            return full[:, :r]
        lt = self.buf[: self.w.shape[0] * r].view(-1, r)
        hc = self.hm[s : s + r]
        if bias is None:
            torch.mm(self.w, hc.T, out=lt)
        else:
            torch.addmm(bias, self.w, hc.T, out=lt)
        return lt

    def grads(self, lt, s: int, dh_rows, dw) -> None:
        """From the logits' gradient ``lt`` of rows ``s : s + r``: write the states' rows
        ``dh_rows`` and add the item table's ``dw`` (either may be None). In bf16 the padded
        columns hold finite logits and meet zero states, so they add nothing to ``dw``."""
        if not self.bf16:
            if dh_rows is not None:
                torch.mm(lt.T, self.w, out=dh_rows)
            if dw is not None:
                dw.addmm_(lt, self.hm[s : s + lt.shape[1]])
            return
        r = lt.shape[1]
        hc, full, low = self._padded(s, r)
        g = low.copy_(full)
        if dh_rows is not None:
            dh_rows.copy_(torch.mm(g.T, self.wm, out=self.dh_part[: len(hc)])[:r])
        if dw is not None:
            dw += torch.mm(g, hc, out=self.dw_part)


class _ChunkedCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w, b, targets, repeat_idx, repeat_val, max_elements: int, bf16: bool):
        n_rows, n_items = h.shape[0], w.shape[0]
        step = max(1, min(n_rows, max_elements // max(n_items, 1)))
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        dh = torch.zeros_like(h) if need_h else None
        dw = torch.zeros_like(w) if need_w else None
        db = torch.zeros_like(b) if b is not None and ctx.needs_input_grad[2] else None
        dg = torch.zeros_like(repeat_val) if repeat_val is not None and ctx.needs_input_grad[5] else None
        total = h.new_zeros(())
        scale = 1.0 / max(n_rows, 1)
        bias = None if b is None else b[:, None]
        mats = _Products(h, w, step, need_h, need_w, bf16)
        for s in range(0, n_rows, step):
            tc = targets[s : s + step]
            r = len(tc)
            cols = torch.arange(r, device=h.device)
            lt = mats.logits(s, r, bias)
            logits = lt.T  # [rows, items], a view
            if repeat_val is not None:
                idx = repeat_idx[s : s + step]
                logits.scatter_add_(1, idx.clamp(min=0), repeat_val[s : s + step].masked_fill(idx < 0, 0.0))
            top = lt.amax(0)
            target_logit = lt[tc, cols]
            lt.sub_(top).exp_()  # one exp per logit: the softmax and the log-sum-exp share it
            norm = lt.sum(0)
            total += (top + norm.log() - target_logit).sum()
            lt.mul_(scale / norm)  # the softmax, scaled for the mean
            lt[tc, cols] -= scale  # minus the one-hot: the gradient of the logits
            mats.grads(lt, s, None if dh is None else dh[s : s + r], dw)
            if db is not None:
                db += lt.sum(1)
            if dg is not None:
                dg[s : s + r] = logits.gather(1, idx.clamp(min=0)) * (idx >= 0)
        ctx.save_for_backward(*(g if g is not None else torch.empty(0) for g in (dh, dw, db, dg)))
        ctx.has = (dh is not None, dw is not None, db is not None, dg is not None)
        return total * scale

    @staticmethod
    def backward(ctx, grad_out):
        saved = ctx.saved_tensors
        dh, dw, db, dg = (g * grad_out if has else None for g, has in zip(saved, ctx.has))
        return dh, dw, db, None, None, dg, None, None


def fast_bf16(device: str = "cpu") -> bool:
    """True where bfloat16 matrix products run at native speed: a CPU with AVX512-BF16 (or a
    CUDA GPU that supports bf16). Elsewhere torch emulates them, slower than float32."""
    if str(device).startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe and probe())


def chunked_cross_entropy(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, targets: torch.Tensor,
                          repeat_idx: torch.Tensor | None = None, repeat_val: torch.Tensor | None = None, *,
                          max_elements: int = 1 << 22, bf16: bool = False) -> torch.Tensor:
    """Mean cross-entropy of logits ``h @ w.T + b`` (+ the repeat term) against ``targets``
    (0-based columns), ``max_elements`` logits at a time. ``h [T, d]``, ``w [N, d]``, ``b [N]``
    or None; ``repeat_idx [T, L]`` (distinct per row, -1 = none) with ``repeat_val [T, L]``,
    or both None. ``bf16=True`` runs the matrix products on bfloat16 copies (float32 softmax
    and gradient sums)."""
    if (repeat_idx is None) != (repeat_val is None):
        raise ValueError("repeat_idx and repeat_val go together")
    return _ChunkedCE.apply(h, w, b, targets, repeat_idx, repeat_val, int(max_elements), bool(bf16))


def repeat_features(window: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct items of each history window and what the repeat head knows of them.

    ``window [T, L]`` holds 1-based items, right-aligned (the last column is the most recent
    item, 0 = padding). Returns ``idx [T, L]``: each distinct item once, 0-based, at the column
    of its last occurrence (-1 elsewhere), and ``feats [T, L, 3]``: a constant 1, the log of its
    count in the window, and its recency ``1 / (1 + steps since its last occurrence)``. The
    head turns these into one logit per history item, so "how often" and "how lately" are
    learned, not hand-set as in the re-buy baseline.

    Example:
        >>> idx, f = repeat_features(torch.tensor([[0, 3, 5, 3]]))
        >>> idx.tolist()
        [[-1, -1, 4, 2]]
        >>> [round(x, 3) for x in f[0, 3].tolist()], [round(x, 3) for x in f[0, 2].tolist()]
        ([1.0, 0.693, 1.0], [1.0, 0.0, 0.5])
    """
    t, width = window.shape
    same = (window[:, :, None] == window[:, None, :]) & (window[:, :, None] > 0)
    count = same.sum(2)
    later = torch.ones(width, width, dtype=torch.bool, device=window.device).triu(1)
    last = (window > 0) & ~(same & later).any(2)  # no later occurrence in the window
    idx = torch.where(last, window - 1, torch.full_like(window, -1))
    recency = 1.0 / (width - torch.arange(width, device=window.device, dtype=torch.float32))
    feats = torch.stack([last.float(), torch.log(count.clamp(min=1).float()) * last,
                         recency.expand(t, width) * last], dim=2)
    return idx, feats
