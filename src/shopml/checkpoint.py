"""Training checkpoints of :func:`shopml.training.train`, without pickle.

A checkpoint is a folder written atomically (:class:`~shopml.artifacts.atomic_dir`):
``weights.safetensors`` (the model), ``best.safetensors`` (the best model so far),
``optim.safetensors`` (the optimizer's tensors), ``extra.safetensors`` (the torch RNG state
when the loop does not reseed each epoch, and the hooks' tensors) and ``state.json`` (the
loop's :class:`LoopState`, the optimizer's scalars and param groups, the RNG scheme and
the config). Loading it puts a loop back exactly where it stopped.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from shopml.artifacts import atomic_dir

if TYPE_CHECKING:  # annotations only: training imports this module
    from shopml.training import Hooks, TrainConfig

__all__ = ["LoopState", "save_checkpoint", "load_checkpoint"]


@dataclass
class LoopState:
    epoch: int = 0
    history: list = field(default_factory=list)
    best_epoch: int = 0
    best_score: float | None = None
    bad_epochs: int = 0
    seconds: float = 0.0
    seconds_to_best: float = 0.0
    best_weights: dict | None = None
    decays: int = 0
    out_of_time: bool = False



def save_checkpoint(path: Path, model, opt, state: LoopState, cfg: TrainConfig, hooks: Hooks) -> None:
    from safetensors.torch import save_file

    opt_sd = opt.state_dict()
    opt_tensors, opt_scalars = {}, {}
    for pid, pstate in opt_sd["state"].items():
        for key, val in pstate.items():
            if torch.is_tensor(val):
                opt_tensors[f"{pid}.{key}"] = val.detach().cpu().contiguous()
            else:
                opt_scalars[f"{pid}.{key}"] = val
    doc = {
        "epoch": state.epoch,
        "history": state.history,
        "best_epoch": state.best_epoch,
        "best_score": state.best_score,
        "bad_epochs": state.bad_epochs,
        "decays": state.decays,
        "seconds": state.seconds,
        "seconds_to_best": state.seconds_to_best,
        "optimizer": {"param_groups": opt_sd["param_groups"], "scalars": opt_scalars},
        "rng": {"scheme": _RNG_SCHEMES[cfg.reseed_each_epoch], "seed": cfg.seed},
        "config": asdict(cfg),
    }
    extra = {} if cfg.reseed_each_epoch else {"rng.torch": torch.get_rng_state()}
    hook_state = hooks.state_dict()
    extra.update({f"hooks.{k}": v.contiguous() for k, v in hook_state.items() if torch.is_tensor(v)})
    doc["hooks"] = {k: v for k, v in hook_state.items() if not torch.is_tensor(v)}
    with atomic_dir(path) as tmp:
        save_file(_contig(model.state_dict()), str(tmp / "weights.safetensors"))
        if state.best_weights is not None:
            save_file(_contig(state.best_weights), str(tmp / "best.safetensors"))
        save_file(opt_tensors or {"_empty": torch.zeros(0)}, str(tmp / "optim.safetensors"))
        if extra:
            save_file(extra, str(tmp / "extra.safetensors"))
        (tmp / "state.json").write_text(json.dumps(doc, indent=1, default=_json_default))


_RNG_SCHEMES = {True: "torch.manual_seed(seed*1000003 + epoch + rank) at each epoch start",
                False: "torch.manual_seed(seed) once; the RNG state is in extra.safetensors"}


def _contig(sd: dict) -> dict:
    return {k: v.detach().cpu().contiguous().clone() for k, v in sd.items()}


def _json_default(o: Any):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if torch.is_tensor(o):
        return o.tolist()
    raise TypeError(type(o).__name__)


def load_checkpoint(path: Path, model, opt, hooks: Hooks, device: str = "cpu") -> LoopState:
    from safetensors.torch import load_file

    doc = json.loads((path / "state.json").read_text())
    model.load_state_dict(load_file(str(path / "weights.safetensors")))
    state_tensors = load_file(str(path / "optim.safetensors"), device=device)
    opt_state: dict[int, dict] = {}
    for name, val in state_tensors.items():
        if name == "_empty":
            continue
        pid, key = name.split(".", 1)
        opt_state.setdefault(int(pid), {})[key] = val
    for name, val in doc["optimizer"]["scalars"].items():
        pid, key = name.split(".", 1)
        opt_state.setdefault(int(pid), {})[key] = val
    groups = doc["optimizer"]["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": opt_state, "param_groups": groups})
    extra = load_file(str(path / "extra.safetensors")) if (path / "extra.safetensors").is_file() else {}
    if "rng.torch" in extra:
        torch.set_rng_state(extra["rng.torch"])
    hook_state = dict(doc.get("hooks", {}))
    hook_state.update({k[len("hooks."):]: v for k, v in extra.items() if k.startswith("hooks.")})
    if hook_state:
        hooks.load_state_dict(hook_state)
    best = path / "best.safetensors"
    return LoopState(
        epoch=doc["epoch"],
        history=doc["history"],
        best_epoch=doc["best_epoch"],
        best_score=doc["best_score"],
        bad_epochs=doc["bad_epochs"],
        decays=doc.get("decays", 0),
        seconds=doc["seconds"],
        seconds_to_best=doc["seconds_to_best"],
        best_weights=load_file(str(best)) if best.is_file() else None,
    )
