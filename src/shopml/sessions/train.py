"""Training of the GRU4Rec net: session-parallel loop, sampled softmax with logQ
correction, and Adagrad that updates only the embedding rows a step touched.

The generic :mod:`shopml.training` loop is epoch/batch shaped with a fresh state per batch;
GRU4Rec carries the hidden state of each slot across steps and resets it per slot, so the
loop is written out here (short, and the only place that knows about the carried state).

Example:
    >>> import numpy as np, torch
    >>> from shopml.sessions.nets import GRU4RecNet
    >>> net = GRU4RecNet(n_items=4, hidden=8)
    >>> hist = train_gru4rec(net, np.array([0, 3, 6]), np.array([1, 2, 3, 2, 3, 4]),
    ...                      np.array([0, 1, 2, 2, 1.0]), epochs=1, batch_size=2, n_sample=3)
    >>> len(hist["loss"])
    1
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from shopml import progress
from shopml.sessions.data import NegativeSampler, SessionBatch, session_parallel_batches

__all__ = ["IndexedAdagrad", "train_gru4rec", "carry_hidden", "sampled_logq_loss", "bpr_max_loss", "LOSSES"]

LOSSES = ("cross-entropy", "bpr-max")


class IndexedAdagrad(torch.optim.Optimizer):
    """Adagrad with optional momentum; sparse gradients update only their rows.

    A dense Adagrad step over a 37k x 480 embedding would cost more than the whole
    forward pass; the official GRU4Rec updates the touched rows only.
    Update: acc += g^2; m = momentum * m - lr * g / sqrt(acc + eps); p += m.
    """

    def __init__(self, params, lr: float = 0.05, momentum: float = 0.0, eps: float = 1e-6):
        super().__init__(params, dict(lr=lr, momentum=momentum, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, mom, eps = group["lr"], group["momentum"], group["eps"]
            dense = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if p.grad.is_sparse or mom > 0:
                    if "acc" not in state:
                        state["acc"] = torch.zeros_like(p)
                    if mom > 0 and "mom" not in state:
                        state["mom"] = torch.zeros_like(p)
                if p.grad.is_sparse:
                    self._sparse_update(p, state, lr, mom, eps)
                else:
                    dense.append(p)
            if dense:
                self._dense_update(dense, lr, mom, eps)

    def _dense_update(self, params, lr, mom, eps):
        if mom == 0:
            # torch's fused Adagrad kernel: one pass instead of four. It divides by
            # sqrt(sum) + eps'; with the sum started at eps and eps' = 0 that is exactly
            # sqrt(eps + sum g^2), the update documented above.
            sums = [self.state[p].setdefault("acc_eps", torch.full_like(p, eps)) for p in params]
            steps = [self.state[p].setdefault("fused_step", torch.zeros(())) for p in params]
            torch._foreach_add_(steps, 1)
            torch._fused_adagrad_(params, [p.grad for p in params], sums, steps, lr=lr, lr_decay=0.0,
                                  weight_decay=0.0, eps=0.0, maximize=False)  # fmt: skip
            return
        # foreach kernels: one fused pass per op over all dense tensors (GRU weights)
        grads = [p.grad for p in params]
        accs = [self.state[p]["acc"] for p in params]
        torch._foreach_addcmul_(accs, grads, grads)
        std = torch._foreach_add(accs, eps)
        torch._foreach_sqrt_(std)
        if mom > 0:
            moms = [self.state[p]["mom"] for p in params]
            torch._foreach_mul_(moms, mom)
            torch._foreach_addcdiv_(moms, grads, std, value=-lr)
            torch._foreach_add_(params, moms)
        else:
            torch._foreach_addcdiv_(params, grads, std, value=-lr)

    @torch.no_grad()
    def update_rows(self, p: torch.Tensor, idx: torch.Tensor, rows: torch.Tensor) -> None:
        """Adagrad step of the DISTINCT rows ``idx`` of ``p`` from a gathered copy ``rows``
        (U, ...) whose ``.grad`` holds their summed gradient: the same update as a sparse
        gradient, without building and coalescing a COO tensor. ``p`` must be in this
        optimizer's groups (its hyper-parameters and state are used)."""
        group = next(g for g in self.param_groups if any(q is p for q in g["params"]))
        lr, mom, eps = group["lr"], group["momentum"], group["eps"]
        state = self.state[p]
        if "acc_eps" not in state:  # eps + sum g^2: the eps is added once, not every step
            state["acc_eps"] = torch.full_like(p, eps)
        if mom > 0 and "mom" not in state:
            state["mom"] = torch.zeros_like(p)
        g, new = rows.grad, rows.detach()
        acc = state["acc_eps"].index_select(0, idx).addcmul_(g, g)
        state["acc_eps"].index_copy_(0, idx, acc)
        if mom > 0:
            step = state["mom"].index_select(0, idx).mul_(mom).addcmul_(g, acc.rsqrt_(), value=-lr)
            state["mom"].index_copy_(0, idx, step)
            new.add_(step)
        else:
            new.addcmul_(g, acc.rsqrt_(), value=-lr)
        # idx is distinct and rows held p[idx] before the step: one copy, no gather
        p.index_copy_(0, idx, new)

    @staticmethod
    def _sparse_update(p, state, lr, mom, eps):
        g = p.grad.coalesce()  # the update is non-linear in g: duplicate rows must be summed first
        idx, v = g.indices()[0], g.values()
        acc = state["acc"].index_select(0, idx).addcmul_(v, v)
        state["acc"].index_copy_(0, idx, acc)
        step = v.div_(acc.add_(eps).sqrt_()).mul_(-lr)
        if mom > 0:
            step = state["mom"].index_select(0, idx).mul_(mom).add_(step)
            state["mom"].index_copy_(0, idx, step)
        p.index_add_(0, idx, step)


def carry_hidden(h: torch.Tensor, batch: SessionBatch) -> torch.Tensor:
    """State for ``batch`` from the previous step's ``h``: keep carried rows, zero the
    rows whose session starts now, and cut the graph (truncated BPTT of one step, as
    the official implementation)."""
    h = h.detach()
    if batch.carry is not None:
        h = h[torch.from_numpy(batch.carry)]
    if batch.reset.any():
        h = h.masked_fill(torch.from_numpy(batch.reset).unsqueeze(1), 0.0)
    return h


def sampled_logq_loss(logits: torch.Tensor, log_q: torch.Tensor | None, norm: int) -> torch.Tensor:
    """Cross-entropy over (B, B + n) logits whose diagonal holds each row's target.

    Columns are the batch's targets (in-batch negatives for the other rows, drawn by
    popularity) and the shared sampled negatives (drawn by popularity**alpha). ``log_q``
    (C,) is the log sampling weight of each column: subtracting it (logQ correction) makes
    the sampled softmax an unbiased stand-in for the full one. Summed, divided by ``norm``
    (the nominal batch size, also when the last batches shrink).
    """
    if log_q is not None:
        logits = logits - log_q
    target = torch.arange(logits.shape[0])
    return F.cross_entropy(logits, target, reduction="sum") / norm


def bpr_max_loss(logits: torch.Tensor, target_col: torch.Tensor, *, bpreg: float, elu_param: float,
                 norm: int) -> torch.Tensor:  # fmt: skip
    """BPR-max of Hidasi & Karatzoglou (2018) over (B, C) logits; ``target_col`` (B,)
    holds each row's target column.

    Per row: -log sum_j s_j sigmoid(r_target - r_j) + bpreg * sum_j s_j r_j^2, where s is the
    softmax over the negatives only (the target's own column gets weight 0). The softmax
    weights make the loss focus on the highest-scoring negatives, so it keeps learning
    when most sampled negatives are already ranked low, where plain BPR's gradient
    vanishes; the score regularizer keeps that from pushing the scores apart without bound.
    Scores first pass through ELU(``elu_param``) (the official ``elu-0.5`` final
    activation; 0 = none). ELU is monotone, so the ranking at prediction time is the same.
    """
    if elu_param > 0:
        logits = F.elu(logits, alpha=elu_param)
    is_target = F.one_hot(target_col, logits.shape[1]).bool()
    weights = torch.softmax(logits.masked_fill(is_target, -math.inf), dim=1)
    target = logits.gather(1, target_col.unsqueeze(1))
    ranked = (torch.sigmoid(target - logits) * weights).sum(1)
    loss = -torch.log(ranked + 1e-24) + bpreg * (logits.square() * weights).sum(1)
    return loss.sum() / norm


def train_gru4rec(
    net,
    indptr: np.ndarray,
    items: np.ndarray,
    counts: np.ndarray,
    *,
    epochs: int = 10,
    batch_size: int = 48,
    n_sample: int = 2048,
    sample_alpha: float = 0.2,
    logq: float = 1.0,
    lr: float = 0.07,
    momentum: float = 0.0,
    loss: str = "cross-entropy",
    bpreg: float = 1.0,
    elu_param: float = 0.5,
    seed: int = 0,
    time_budget: float | None = None,
    average_from: int | None = None,
    average_every: int | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> dict:
    """Train ``net`` (:class:`GRU4RecNet`) in place on CSR sessions; returns the history.

    ``counts`` (n_items + 1,) are training popularity counts (index 0 ignored). ``loss`` is
    ``"cross-entropy"`` (softmax; ``logq`` corrects its sampling bias) or ``"bpr-max"``
    (:func:`bpr_max_loss` with ``bpreg`` and ``elu_param``; ``logq`` is not used). With
    ``n_sample == 0`` the candidates are every item instead of the batch's targets plus
    shared negatives. ``time_budget``
    (seconds) stops training early, at a step boundary. With ``average_from=k`` the
    returned weights are the mean of the weights at the end of epochs k, k+1, ... (Polyak /
    stochastic weight averaging: the single-epoch weights peak early on small data and then
    wander; their average sits nearer the centre of the basin). ``average_every=n`` adds a
    snapshot every n steps of the epochs after ``average_from`` (a denser average).
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    torch.manual_seed(seed)
    opt = IndexedAdagrad(net.parameters(), lr=lr, momentum=momentum)
    step_loss = _StepLoss(net, counts, batch_size, n_sample, sample_alpha, logq, loss, bpreg, elu_param, seed)
    t0, hist = time.perf_counter(), {"loss": [], "seconds": [], "steps": []}
    net.train()
    avg = _WeightAverage()
    report = _Report(indptr, items, batch_size, epochs, time_budget)
    for epoch in range(epochs):
        h, total, n, steps = torch.zeros(batch_size, net.hidden), 0.0, 0, 0
        for batch in session_parallel_batches(indptr, items, batch_size):
            x, y = torch.from_numpy(batch.inputs), torch.from_numpy(batch.targets)
            h, value, blocks = step_loss(carry_hidden(h, batch), x, y)
            net.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            for param, idx, rows in blocks:
                opt.update_rows(param, idx, rows)
            if average_every and avg.n and (steps + 1) % average_every == 0:
                avg.add(net)
            total, n, steps = total + float(value.detach()) * batch_size, n + len(y), steps + 1
            report.step(steps)
            if time_budget is not None and time.perf_counter() - t0 > time_budget:
                break
        hist["loss"].append(total / max(n, 1))
        hist["seconds"].append(time.perf_counter() - t0)
        hist["steps"].append(steps)
        if average_from is not None and epoch + 1 >= average_from:
            avg.add(net)
        if on_epoch is not None:
            on_epoch(epoch, hist["loss"][-1])
        report.epoch(epoch + 1, hist["loss"][-1], hist["seconds"][-1])
        if time_budget is not None and time.perf_counter() - t0 > time_budget:
            break
    hist["averaged_snapshots"] = avg.apply(net)
    net.eval()
    return hist


class _Report:
    """Progress events of the GRU4Rec loop: throttled steps and one event per epoch."""

    def __init__(self, indptr, items, batch_size: int, epochs: int, budget: float | None):
        # session-parallel batches advance one event per lane: about this many steps an epoch
        self.steps = max((len(items) - (len(indptr) - 1)) // batch_size, 1)
        self.epochs, self.budget, self.tick = epochs, budget, time.perf_counter()

    def step(self, done: int) -> None:
        if progress.active() and time.perf_counter() - self.tick >= 1.0:
            self.tick = time.perf_counter()
            progress.emit("step", step=done, steps=max(self.steps, done))

    def epoch(self, epoch: int, loss: float, seconds: float) -> None:
        progress.emit("epoch", epoch=epoch, epochs=self.epochs, loss=loss, seconds=seconds, budget_s=self.budget)


class _StepLoss:
    """One training step's forward pass and loss: ``(h, x, y) -> (new_h, loss, blocks)``.

    With sampling, the candidates are the batch's targets plus one shared draw of negatives,
    and the step works on gathered copies of the embedding rows it touches; ``blocks`` lists
    ``(table, distinct indices, gathered rows)`` for :meth:`IndexedAdagrad.update_rows`.
    Without sampling every item is a candidate and the tables get ordinary sparse gradients.
    """

    def __init__(self, net, counts, batch_size, n_sample, sample_alpha, logq, loss, bpreg, elu_param, seed):
        self.net, self.batch_size, self.sample_alpha = net, batch_size, sample_alpha
        self.bpr_max, self.bpreg, self.elu_param = loss == "bpr-max", bpreg, elu_param
        # logQ corrects the sampled softmax; BPR-max has no partition function to correct
        self.logq = 0.0 if self.bpr_max else logq
        self.sampler = NegativeSampler(counts, n_sample, sample_alpha, seed=seed) if n_sample > 0 else None
        self.log_pop = torch.log(torch.as_tensor(np.maximum(counts, 1), dtype=torch.float32))
        self.all_items = torch.arange(1, net.n_items + 1)

    def __call__(self, h: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
        net, blocks, log_q = self.net, [], None
        if self.sampler is not None:
            neg = torch.from_numpy(self.sampler.draw())
            if self.logq:
                log_q = torch.cat([self.log_pop[y], self.sample_alpha * self.log_pop[neg]]) * self.logq
            cand = torch.cat([y, neg])
            # distinct rows touched (inputs + candidates; biases: candidates only, so that
            # momentum moves exactly the rows a sparse gradient would have held)
            uniq, inv = torch.unique(torch.cat([x, cand]), return_inverse=True)
            buniq, binv = torch.unique(cand, return_inverse=True)
            rows = net.item.weight.detach().index_select(0, uniq).requires_grad_()
            bias_rows = net.bias.weight.detach().index_select(0, buniq).requires_grad_()
            h, logits = net.train_logits_rows(h, x, rows, inv, bias_rows, binv)
            blocks = [(net.item.weight, uniq, rows), (net.bias.weight, buniq, bias_rows)]
            target_col = torch.arange(len(y))  # the batch's targets sit on the diagonal
        else:
            h, logits = net.train_logits(h, x, self.all_items)
            target_col = y - 1
        if self.bpr_max:
            value = bpr_max_loss(logits, target_col, bpreg=self.bpreg, elu_param=self.elu_param, norm=self.batch_size)
        elif self.sampler is not None:
            value = sampled_logq_loss(logits, log_q, self.batch_size)
        else:
            value = F.cross_entropy(logits, target_col, reduction="sum") / self.batch_size
        return h, value, blocks


class _WeightAverage:
    """Running mean of a net's parameters over the snapshots :meth:`add` takes."""

    def __init__(self):
        self.mean, self.n = None, 0

    def add(self, net) -> None:
        self.n += 1
        self.mean = _accumulate(net, self.mean, self.n)

    @torch.no_grad()
    def apply(self, net) -> int:
        """Load the mean into ``net`` (untouched when no snapshot was taken); returns the count."""
        if self.mean is not None:
            for name, p in net.named_parameters():
                p.copy_(self.mean[name])
        return self.n


@torch.no_grad()
def _accumulate(net, avg: dict | None, n: int) -> dict:
    """Running mean of the parameters; ``n`` = number of snapshots including this one."""
    if avg is None:
        return {k: p.detach().clone() for k, p in net.named_parameters()}
    for k, p in net.named_parameters():
        avg[k].mul_((n - 1) / n).add_(p.detach(), alpha=1.0 / n)
    return avg
