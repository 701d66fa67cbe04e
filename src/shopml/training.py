"""The one training loop of shopml: epochs, AdamW, early stopping, progress, checkpoints, DDP.

There is no Trainer hierarchy. A job hands :func:`train` a ``torch.nn.Module``, a loss function
``loss_fn(model, batch) -> scalar tensor``, its pre-built training tensors wrapped in
:class:`IndexBatches`, and optionally ``validate(model) -> {"ndcg@10": ...}``. The loop

* shuffles with a generator seeded by ``seed + epoch`` and reseeds torch with the same value at
  the start of every epoch, so an epoch's batches and dropout masks depend only on
  ``(seed, epoch)``. That is what makes resume-after-``kill -9`` land on identical weights;
* early-stops on ``config.monitor`` (higher is better) and restores the best weights; with
  ``max_decays > 0`` a plateau of ``patience`` epochs first restores the best weights and
  multiplies the learning rate by ``lr_decay`` (at most ``max_decays`` times), the cheap way to
  get the last few percent after a fast, high-learning-rate start;
* writes a checkpoint folder after every epoch, atomically (``checkpoint_dir/last``):
  ``weights.safetensors`` (model), ``best.safetensors`` (best model so far),
  ``optim.safetensors`` (AdamW moment tensors) and ``state.json`` (epoch, history, optimizer
  scalars and param groups, RNG scheme). No pickle anywhere;
* under ``torchrun --nproc_per_node=N`` (``WORLD_SIZE`` > 1) joins a gloo process group, gives
  each rank its 1/N share of every batch of the shared, seeded batch list (the steps of one
  process; only dropout masks and rounding differ), averages gradients with one all-reduce per
  step, and lets only rank 0 validate, checkpoint and print. Gradients are all-reduced by hand instead
  of wrapping in ``DistributedDataParallel`` because loss functions call sub-modules
  (``model.encode``) and DDP only hooks ``forward``.

Loops that are not plain "loss, backward, step" plug in through three small points instead of
writing their own loop (GRU4Rec does: session-parallel batches carrying a hidden state, an
Adagrad that updates only the embedding rows a step touched, weight averaging):

* ``batches`` may be any object with ``plan(epoch, seed, batch_size, rank, world)`` (the
  epoch's batch keys, an iterable with ``len``, an estimate is fine) and ``take(key)`` (the
  batch ``loss_fn`` gets); :class:`IndexBatches` is the usual one;
* ``optimizer(params, config)`` builds the optimizer (default: AdamW with ``config.lr`` and
  ``config.weight_decay``); its state is checkpointed like AdamW's;
* ``hooks`` (a :class:`Hooks`) runs after every optimizer step and every epoch, adds fields to
  the epoch's history row, and checkpoints its own state.

``TrainConfig(reseed_each_epoch=False)`` seeds torch once and lets its RNG run across epochs
(the checkpoint then saves the RNG state, so resume stays exact); ``budget_per_step=True``
checks ``max_seconds`` after every step, for loops whose single epoch can outlast a budget.

Example:
    >>> import torch
    >>> net = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(64, 3), torch.randn(64, 1)
    >>> loss = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])
    >>> res = train(net, loss, IndexBatches(x, y), config=TrainConfig(epochs=2, progress=False))
    >>> len(res.history), res.best_epoch
    (2, 2)
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from shopml import progress
from shopml.checkpoint import LoopState, load_checkpoint, save_checkpoint
from shopml.errors import ConfigError, TrainingError

__all__ = ["TrainConfig", "TrainResult", "IndexBatches", "Hooks", "train", "dist_info", "torch_threads",
           "check_device"]


@dataclass
class TrainConfig:
    """Settings of :func:`train`. ``monitor`` is a key of ``validate``'s dict; higher is better.

    Example:
        >>> TrainConfig(epochs=5, lr=3e-3).monitor
        'ndcg@10'
    """

    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    patience: int = 5
    monitor: str = "ndcg@10"
    seed: int = 0
    checkpoint_dir: str | None = None
    progress: bool = True
    grad_clip: float | None = 5.0
    threads: int | None = 2
    resume: bool = True
    validate_every: int = 1
    lr_decay: float = 1.0
    max_decays: int = 0
    decay_patience: int | None = None  # epochs without a new best before a decay (None: patience)
    max_seconds: float | None = None
    reseed_each_epoch: bool = True  # False: one torch.manual_seed(seed), RNG state checkpointed
    budget_per_step: bool = False  # also check max_seconds between steps (the cut epoch is kept)
    device: str = "cpu"  # the model and each batch move here; checkpoints are always CPU tensors


@dataclass
class TrainResult:
    """What :func:`train` did: one history row per epoch (``epoch``, ``loss``, ``seconds``,
    validation metrics), the best epoch/score, total seconds and seconds until the best epoch."""

    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float | None = None
    seconds: float = 0.0
    seconds_to_best: float = 0.0
    stopped_early: bool = False
    resumed_from: int = 0
    out_of_time: bool = False

    @property
    def epochs(self) -> int:
        return len(self.history)


class IndexBatches:
    """Pre-built training tensors (same first dimension) cut into seeded, shuffled batches.

    With ``lengths``, samples are bucketed: each shuffled window of ``bucket`` batches is sorted
    by length before cutting, so a batch holds sequences of similar length and the loss can trim
    its padding; the batch order is then shuffled again.

    Example:
        >>> b = IndexBatches(torch.arange(10))
        >>> [len(i) for i in b.plan(epoch=1, seed=0, batch_size=4)]
        [4, 4, 2]
    """

    def __init__(self, *tensors: torch.Tensor, lengths: torch.Tensor | None = None, bucket: int = 64):
        self.tensors = tensors
        self.lengths = lengths
        self.bucket = bucket

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def plan(self, epoch: int, seed: int, batch_size: int, rank: int = 0, world: int = 1) -> list[torch.Tensor]:
        """Index tensors of the batches this rank runs in ``epoch`` (identical on every call)."""
        g = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
        perm = torch.randperm(len(self), generator=g)
        if self.lengths is not None:
            window = batch_size * self.bucket
            chunks = []
            for s in range(0, len(perm), window):
                part = perm[s : s + window]
                chunks.append(part[torch.argsort(self.lengths[part], stable=True)])
            perm = torch.cat(chunks)
        batches = list(torch.split(perm, batch_size))
        if self.lengths is not None:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        if world > 1:
            # Every rank takes its share of each global batch, so N processes run the steps of
            # one process on the same batches (gradients are averaged; dropout masks differ).
            # A batch too small to share goes whole to every rank (the last one, if any).
            batches = [b.tensor_split(world)[rank] if len(b) >= world else b for b in batches]
        return batches

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t[idx] for t in self.tensors)

    def take_all(self, plan: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, ...]]:
        return [self.take(i) for i in plan]


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch threads and restore the caller's setting after it
    (``torch.set_num_threads`` is process-wide: a library must not leave it changed)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Hooks:
    """Extension points of :func:`train` for a loop that needs more than loss-backward-step;
    subclass and override what you need (every method here does nothing).

    Example:
        >>> class CountSteps(Hooks):
        ...     def __init__(self): self.n = 0
        ...     def after_step(self, model, opt): self.n += 1
        ...     def after_epoch(self, model, epoch): return {"steps": self.n}
        >>> net, x = torch.nn.Linear(2, 1), torch.randn(8, 2)
        >>> loss = lambda m, b: m(b[0]).square().mean()
        >>> cfg = TrainConfig(epochs=1, batch_size=4, progress=False)
        >>> train(net, loss, IndexBatches(x), config=cfg, hooks=CountSteps()).history[0]["steps"]
        2
    """

    def after_step(self, model: torch.nn.Module, opt: torch.optim.Optimizer) -> None:
        """Right after ``opt.step()`` (e.g. updates the optimizer does not see)."""

    def after_epoch(self, model: torch.nn.Module, epoch: int) -> dict | None:
        """After the epoch's last step, before validation; returns extra history fields."""
        return None

    def on_decay(self, model: torch.nn.Module, opt: torch.optim.Optimizer, decays: int) -> None:
        """After a plateau restored the best weights and cut the learning rate (the
        ``decays``-th time), before the next epoch (e.g. a change of loss)."""

    def state_dict(self) -> dict:
        """The hook's state for the checkpoint: tensors go to safetensors, the rest to JSON."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (on resume)."""


def _adamw(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)


def dist_info() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when not distributed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


def _init_dist(world: int) -> None:
    import torch.distributed as dist

    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="gloo")


def train(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, tuple], torch.Tensor],
    batches: IndexBatches | Sequence[torch.Tensor],
    *,
    validate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    config: TrainConfig | None = None,
    optimizer: Callable[[Any, TrainConfig], torch.optim.Optimizer] | None = None,
    hooks: Hooks | None = None,
) -> TrainResult:
    """Train ``model`` in place; return a :class:`TrainResult`. See the module docstring."""
    cfg = config or TrainConfig()
    _check_config(cfg)
    hooks = hooks or Hooks()
    if not (hasattr(batches, "plan") and hasattr(batches, "take")):
        batches = IndexBatches(*batches)
    rank, world = dist_info()
    _init_dist(world)
    # the process's thread count comes back when training ends (a library must not leave it)
    with torch_threads(max(1, cfg.threads // world) if cfg.threads else None):
        return _loop(model, loss_fn, batches, validate, cfg, optimizer, hooks, rank, world)


def _loop(model, loss_fn, batches, validate, cfg: TrainConfig, optimizer, hooks: Hooks, rank: int,
          world: int) -> TrainResult:
    torch.manual_seed(cfg.seed)
    model.to(cfg.device)
    opt = (optimizer or _adamw)(model.parameters(), cfg)
    state = LoopState()
    ckpt = Path(cfg.checkpoint_dir) / "last" if cfg.checkpoint_dir else None
    if ckpt is not None and cfg.resume and (ckpt / "state.json").is_file():
        state = load_checkpoint(ckpt, model, opt, hooks, cfg.device)
    if world > 1:
        _broadcast_params(model)
    t0 = time.perf_counter() - state.seconds
    result = TrainResult(resumed_from=state.epoch)
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        if validate is not None and state.bad_epochs >= max(cfg.patience, 1):
            break
        deadline = t0 + cfg.max_seconds if cfg.budget_per_step and cfg.max_seconds is not None else None
        loss, cut = _run_epoch(model, loss_fn, batches, opt, hooks, cfg, epoch, rank, world, deadline)
        if not math.isfinite(loss):
            # Checked once per epoch (no per-step sync); NaN weights would otherwise be kept and
            # early stopping would end the fit as if it had converged.
            raise TrainingError(f"training diverged: the mean loss of epoch {epoch} is {loss} "
                                "(non-finite inputs, or a learning rate too high)")
        row = {"epoch": epoch, "loss": loss, **({"partial": True} if cut else {})}
        row.update(hooks.after_epoch(model, epoch) or {})
        if validate is not None and (epoch % cfg.validate_every == 0 or epoch == cfg.epochs):
            row.update(_validate(model, validate, rank, world, cfg.monitor))
        row["seconds"] = time.perf_counter() - t0
        state.history.append(row)
        _update_best(state, model, row, cfg, validate is not None, epoch)
        decay_after = cfg.patience if cfg.decay_patience is None else cfg.decay_patience
        if validate is not None and state.bad_epochs >= max(decay_after, 1) and state.decays < cfg.max_decays:
            _decay(state, model, opt, cfg)
            hooks.on_decay(model, opt, state.decays)
            row["lr"] = opt.param_groups[0]["lr"]
        state.epoch, state.seconds = epoch, row["seconds"]
        if rank == 0 and cfg.progress:
            _print_row(row, cfg.monitor, cfg.epochs, cfg.max_seconds)
        if ckpt is not None and rank == 0:
            save_checkpoint(ckpt, model, opt, state, cfg, hooks)
        if world > 1:
            torch.distributed.barrier()
        if cfg.max_seconds is not None and state.seconds >= cfg.max_seconds:
            state.out_of_time = True
            break  # a wall-time budget, same on every rank (rank 0's clock would diverge: use ours)
    if state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    result.history, result.best_epoch, result.best_score = state.history, state.best_epoch, state.best_score
    result.seconds = time.perf_counter() - t0
    result.seconds_to_best = state.seconds_to_best
    result.stopped_early = state.epoch < cfg.epochs
    result.out_of_time = state.out_of_time
    return result


def _check_config(cfg: TrainConfig) -> None:
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.lr <= 0 or cfg.patience < 0:
        raise ConfigError(f"invalid training config: {cfg}")
    check_device(cfg.device)


def check_device(device: str) -> None:
    """Refuse a device this machine does not have, before any work (one line).

    Example:
        >>> check_device("cpu")
    """
    if device == "cpu":
        return
    if not device.startswith("cuda"):
        raise ConfigError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}")
    if not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: this machine has no CUDA GPU (torch.cuda.is_available() is False)")


def _decay(state: LoopState, model, opt, cfg: TrainConfig) -> None:
    """Plateau: go back to the best weights and continue with a smaller learning rate."""
    if state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    for g in opt.param_groups:
        g["lr"] *= cfg.lr_decay
    state.decays += 1
    state.bad_epochs = 0


def _run_epoch(model, loss_fn, batches, opt, hooks, cfg, epoch, rank, world, deadline) -> tuple[float, bool]:
    """Mean step loss of one epoch, and whether ``deadline`` cut it short."""
    if cfg.reseed_each_epoch:
        # Reseed per epoch: dropout masks then depend only on (seed, epoch), so resume is exact.
        torch.manual_seed(_epoch_seed(cfg.seed, epoch) + rank)
    model.train()
    plan = batches.plan(epoch, cfg.seed, cfg.batch_size, rank, world)
    total, count, cut = torch.zeros((), device=cfg.device), 0, False
    with _progress(cfg.progress and rank == 0, len(plan), f"epoch {epoch}") as advance:
        for idx in plan:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model, _to(batches.take(idx), cfg.device))
            loss.backward()
            if world > 1:
                _allreduce_grads(model, world)
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            hooks.after_step(model, opt)
            total += loss.detach()
            count += 1
            advance()
            if deadline is not None and time.perf_counter() > deadline:
                cut = True  # the budget ran out mid-epoch (ranks may disagree: single process only)
                break
    if world > 1:
        total = total.cpu()
        torch.distributed.all_reduce(total)
        count *= world
    return float(total) / max(count, 1), cut


def _to(batch, device: str):
    """A batch (a tensor, or a tuple or list of them) on ``device``; anything else as it is."""
    if device == "cpu":
        return batch
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    return batch


def _validate(model, validate, rank, world, monitor) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        metrics = validate(model) if rank == 0 else {}
    if monitor not in metrics and rank == 0:
        raise ConfigError(f"validate() returned {sorted(metrics)}; it must include the monitor {monitor!r}")
    if world > 1:  # share rank 0's score through a tensor (broadcast_object_list would pickle)
        score = torch.tensor([float(metrics.get(monitor, 0.0))], dtype=torch.float64)
        torch.distributed.broadcast(score, src=0)
        metrics = metrics if rank == 0 else {monitor: float(score[0])}
    return {k: float(v) for k, v in metrics.items()}


def _update_best(state, model, row, cfg, has_validate, epoch) -> None:
    if not has_validate:
        state.best_epoch, state.seconds_to_best = epoch, row["seconds"]
        return
    if cfg.monitor not in row:
        return
    score = row[cfg.monitor]
    if state.best_score is None or score > state.best_score:
        state.best_score, state.best_epoch, state.bad_epochs = score, epoch, 0
        state.seconds_to_best = row["seconds"]
        state.best_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    else:
        state.bad_epochs += 1  # the loop stops once this reaches `patience`


def _allreduce_grads(model, world) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def _broadcast_params(model) -> None:
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            torch.distributed.broadcast(t.data, src=0)


class _progress:
    """Per-batch ``step`` events (throttled to about one a second) for an epoch, or a no-op."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.enabled, self.total, self.label = enabled and progress.active(), total, label

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        self.done, self.last = 0, time.perf_counter()

        def advance():
            self.done += 1
            now = time.perf_counter()
            if now - self.last >= 1.0 or self.done == self.total:
                self.last = now
                progress.emit("step", step=self.done, steps=max(self.total, self.done))  # total may be an estimate
        return advance

    def __exit__(self, *exc):
        return False


def _print_row(row: dict, monitor: str, epochs: int, max_seconds: float | None) -> None:
    progress.emit("epoch", epochs=epochs, monitor=monitor, metric=row.get(monitor), budget_s=max_seconds,
                  **{k: v for k, v in row.items() if k in ("epoch", "loss", "seconds", "lr")})
