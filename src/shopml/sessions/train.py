"""Training of the GRU4Rec net: session-parallel batches, sampled softmax with logQ
correction, and Adagrad that updates only the embedding rows a step touched.

It runs in the shared :func:`shopml.training.train` loop (progress, checkpoints and resume,
early stopping, time budget) through its extension points: :class:`SessionSteps` yields the
session-parallel batches in file order, the step loss carries each slot's hidden state from
one step to the next, the optimizer factory builds :class:`IndexedAdagrad`, and the hooks apply
the gathered-row updates and the weight averaging. The torch RNG (dropout) and the negative
sampler run on across epochs from one seed, as this loop did when it was written out here,
so the weights stay bit-identical to that version; the checkpoint saves both RNG states.

Example:
    >>> import numpy as np, torch
    >>> from shopml.sessions.nets import GRU4RecNet
    >>> net = GRU4RecNet(n_items=4, hidden=8)
    >>> res = train_gru4rec(net, np.array([0, 3, 6]), np.array([1, 2, 3, 2, 3, 4]),
    ...                     np.array([0, 1, 2, 2, 1.0]), epochs=1, batch_size=2, n_sample=3, progress=False)
    >>> [sorted(row) for row in res.history]
    [['epoch', 'loss', 'seconds', 'steps']]
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from shopml.errors import ConfigError
from shopml.sessions.data import NegativeSampler, SessionBatch, session_parallel_batches
from shopml.training import Hooks, TrainConfig, TrainResult, train

__all__ = ["IndexedAdagrad", "SessionSteps", "train_gru4rec", "carry_hidden", "sampled_logq_loss", "bpr_max_loss",
           "LOSSES"]

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
    max_seconds: float | None = None,
    average_from: int | None = None,
    average_every: int | None = None,
    validate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    monitor: str = "mrr@20",
    patience: int = 5,
    checkpoint_dir: str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``net`` (:class:`GRU4RecNet`) in place on CSR sessions; returns the loop's
    :class:`~shopml.training.TrainResult` (``history``: one row per epoch with ``epoch``,
    ``loss``, ``steps``, ``seconds``, ``snapshots`` when averaging, validation metrics).

    ``counts`` (n_items + 1,) are training popularity counts (index 0 ignored). ``loss`` is
    ``"cross-entropy"`` (softmax; ``logq`` corrects its sampling bias) or ``"bpr-max"``
    (:func:`bpr_max_loss` with ``bpreg`` and ``elu_param``; ``logq`` is not used). With
    ``n_sample == 0`` the candidates are every item instead of the batch's targets plus
    shared negatives. ``max_seconds`` (seconds) stops training early, at a step boundary.
    With ``average_from=k`` the returned weights are the mean of the weights at the end of
    epochs k, k+1, ... (Polyak / stochastic weight averaging: the single-epoch weights peak
    early on small data and then wander; their average sits nearer the centre of the basin).
    ``average_every=n`` adds a snapshot every n steps of the epochs after ``average_from``
    (a denser average). ``validate(net) -> {monitor: ...}`` turns on early stopping after
    ``patience`` epochs without improvement (the best epoch's weights are kept, unless
    averaging is on: then the average over the epochs run is kept). ``checkpoint_dir``
    writes a checkpoint after every epoch and resumes from it, bit-exactly.
    """
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {', '.join(LOSSES)}")
    # fewer sessions with a next click than slots: the slots could never all be filled
    batch_size = max(1, min(batch_size, int((np.diff(indptr) >= 2).sum())))
    step_loss = _StepLoss(net, counts, batch_size, n_sample, sample_alpha, logq, loss, bpreg, elu_param, seed)
    hooks = _GRU4RecHooks(step_loss, average_from, average_every)
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, max_seconds=max_seconds,
                      patience=patience, monitor=monitor, checkpoint_dir=checkpoint_dir, progress=progress,
                      grad_clip=None, threads=None, reseed_each_epoch=False, budget_per_step=True)  # fmt: skip
    result = train(net, step_loss, SessionSteps(indptr, items), validate=validate, config=cfg,
                   optimizer=lambda params, c: IndexedAdagrad(params, lr=c.lr, momentum=momentum), hooks=hooks)
    hooks.average.apply(net)
    net.eval()
    return result


class SessionSteps:
    """Session-parallel batches (:func:`session_parallel_batches`) as the shared loop's
    ``batches``: every epoch walks the sessions in file order, so ``epoch`` and ``seed`` are
    not used; ``len`` of a plan is an estimate (the number of targets / batch size).

    Example:
        >>> plan = SessionSteps(np.array([0, 3, 5]), np.array([1, 2, 3, 4, 5])).plan(1, 0, 2)
        >>> len(plan), [b.inputs.tolist() for b in plan]
        (1, [[1, 4], [2]])
    """

    def __init__(self, indptr: np.ndarray, items: np.ndarray):
        self.indptr, self.items = indptr, items

    def plan(self, epoch: int, seed: int, batch_size: int, rank: int = 0, world: int = 1) -> _Plan:
        if world > 1:
            raise ConfigError("GRU4Rec trains in one process: its hidden state runs through the session order")
        return _Plan(self.indptr, self.items, batch_size)

    def take(self, batch: SessionBatch) -> SessionBatch:
        return batch


class _Plan:
    def __init__(self, indptr, items, batch_size: int):
        self.indptr, self.items, self.batch_size = indptr, items, batch_size

    def __len__(self) -> int:
        # each step advances every slot by one event: about targets / batch_size steps
        return max((len(self.items) - (len(self.indptr) - 1)) // self.batch_size, 1)

    def __iter__(self):
        return session_parallel_batches(self.indptr, self.items, self.batch_size)


class _GRU4RecHooks(Hooks):
    """What the plain loop step does not do: the Adagrad step of the gathered embedding rows,
    weight-average snapshots, and the per-epoch reset of the carried hidden state."""

    def __init__(self, step_loss: _StepLoss, average_from: int | None, average_every: int | None):
        self.step_loss, self.average_from, self.average_every = step_loss, average_from, average_every
        self.average, self.steps = _WeightAverage(), 0

    def after_step(self, model, opt) -> None:
        for param, idx, rows in self.step_loss.blocks:
            opt.update_rows(param, idx, rows)
        self.steps += 1
        if self.average_every and self.average.n and self.steps % self.average_every == 0:
            self.average.add(model)

    def after_epoch(self, model, epoch: int) -> dict:
        if self.average_from is not None and epoch >= self.average_from:
            self.average.add(model)
        row = {"steps": self.steps, **({"snapshots": self.average.n} if self.average_from is not None else {})}
        self.steps, self.step_loss.h = 0, None  # the next epoch starts every slot afresh
        return row

    def state_dict(self) -> dict:
        state = {"average_n": self.average.n}
        if self.step_loss.sampler is not None:
            state["sampler"] = self.step_loss.sampler.state_dict()
        state.update({f"average.{k}": v for k, v in (self.average.mean or {}).items()})
        return state

    def load_state_dict(self, state: dict) -> None:
        if "sampler" in state:
            self.step_loss.sampler.load_state_dict(state["sampler"])
        self.average.n = int(state.get("average_n", 0))
        mean = {k[len("average."):]: v.clone() for k, v in state.items() if k.startswith("average.")}
        self.average.mean = mean or None


class _StepLoss:
    """The loop's ``loss_fn(net, batch)``: one step's forward pass and loss. It keeps the
    hidden state ``h`` for the next step (None: the epoch starts, every slot at zero).

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
        self.h, self.blocks = None, []

    def __call__(self, net, batch: SessionBatch) -> torch.Tensor:
        x, y = torch.from_numpy(batch.inputs), torch.from_numpy(batch.targets)
        h = torch.zeros(len(x), net.hidden) if self.h is None else carry_hidden(self.h, batch)
        self.h, value, self.blocks = self._forward(h, x, y)
        return value

    def _forward(self, h: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
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
            # the features' part is added to the gathered rows; its table gets a dense gradient
            h, logits = net.train_logits_rows(h, x, net.with_features(rows, uniq), inv, bias_rows, binv)
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
