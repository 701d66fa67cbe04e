"""The shared training loop: exact resume after kill -9, early stopping, torchrun parity."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from shopml.training import IndexBatches, TrainConfig, train

# A tiny planted task: class = argmax of a fixed random projection of the features.
SCRIPT = textwrap.dedent(
    """
    import hashlib, json, os, signal, sys
    import torch
    from shopml.training import IndexBatches, TrainConfig, train

    out, ckpt, crash_at, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 4, generator=g)
    x = torch.randn(1200, 8, generator=g)
    y = (x @ w).argmax(1)
    xv, yv = x[1000:], y[1000:]
    x, y = x[:1000], y[:1000]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(32, 4))

    def loss_fn(m, b):
        return torch.nn.functional.cross_entropy(m(b[0]), b[1])

    calls = [0]

    def validate(m):
        calls[0] += 1
        if crash_at and calls[0] == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"acc": float((m(xv).argmax(1) == yv).float().mean())}

    cfg = TrainConfig(epochs=epochs, lr=1e-2, batch_size=50, patience=100, monitor="acc",
                      checkpoint_dir=ckpt or None, progress=False, seed=3)
    res = train(net, loss_fn, IndexBatches(x, y), validate=validate, config=cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        blob = b"".join(p.detach().numpy().tobytes() for p in net.parameters())
        json.dump({"sha": hashlib.sha256(blob).hexdigest(), "history": res.history,
                   "best_epoch": res.best_epoch, "best": res.best_score,
                   "resumed_from": res.resumed_from}, open(out, "w"))
    """
)


def _run(tmp_path: Path, name: str, ckpt: str, crash_at: int, epochs: int = 6, torchrun: bool = False):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{name}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if torchrun:
        runner = str(Path(sys.executable).with_name("torchrun"))
        cmd = [runner, "--standalone", "--nproc_per_node=2", str(script)]
    else:
        cmd = [sys.executable, str(script)]
    proc = subprocess.run(cmd + [str(out), ckpt, str(crash_at), str(epochs)], env=env, capture_output=True,
                          text=True, timeout=120)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def _strip_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_resume_after_kill9_gives_identical_weights_and_metrics(tmp_path):
    ckpt = tmp_path / "ckpt"
    crashed, res = _run(tmp_path, "crashed", str(ckpt), crash_at=4)
    assert crashed.returncode == -9 and res is None, crashed.stderr
    # the checkpoint of epoch 3 survived the kill
    assert json.loads((ckpt / "last" / "state.json").read_text())["epoch"] == 3
    _, resumed = _run(tmp_path, "resumed", str(ckpt), crash_at=0)
    _, straight = _run(tmp_path, "straight", "", crash_at=0)
    assert resumed["resumed_from"] == 3
    assert resumed["sha"] == straight["sha"]
    assert _strip_seconds(resumed["history"]) == _strip_seconds(straight["history"])
    assert straight["best"] > 0.6


def test_early_stopping_restores_best_weights():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.1, 0.9, 0.9])
    snapshots = {}

    def validate(m):
        snapshots[len(snapshots) + 1] = m.weight.detach().clone()
        return {"ndcg@10": next(scores)}

    loss = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])  # noqa: E731
    res = train(net, loss, IndexBatches(x, y), validate=validate,
                config=TrainConfig(epochs=7, lr=0.05, batch_size=16, patience=2, progress=False))
    assert res.best_epoch == 2 and res.best_score == 0.5
    assert len(res.history) == 4 and res.stopped_early  # epochs 3 and 4 did not improve
    assert torch.equal(net.weight, snapshots[2])
    assert not torch.equal(snapshots[4], snapshots[2])


def test_bucketed_batches_cover_every_sample_once_and_are_seeded():
    lengths = torch.randint(1, 50, (1000,))
    b = IndexBatches(torch.arange(1000), lengths=lengths, bucket=4)
    plan = b.plan(epoch=1, seed=0, batch_size=32)
    assert sorted(torch.cat(plan).tolist()) == list(range(1000))
    assert all(torch.equal(p, q) for p, q in zip(plan, b.plan(epoch=1, seed=0, batch_size=32)))
    assert not torch.equal(plan[0], b.plan(epoch=2, seed=0, batch_size=32)[0])
    # sharding: each rank takes its half of every batch, so two ranks run one process's steps
    r0, r1 = b.plan(1, 0, 32, rank=0, world=2), b.plan(1, 0, 32, rank=1, world=2)
    assert len(r0) == len(r1) == len(plan)
    assert all(torch.equal(torch.cat([a, c]), p) for a, c, p in zip(r0, r1, plan))


@pytest.mark.slow
def test_torchrun_two_processes_reach_single_process_quality(tmp_path):
    if shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists():
        pytest.skip("torchrun not installed")
    proc, two = _run(tmp_path, "two", "", crash_at=0, epochs=6, torchrun=True)
    assert two is not None, proc.stderr[-2000:]
    _, one = _run(tmp_path, "one", "", crash_at=0, epochs=6)
    assert two["best"] > 0.6 and one["best"] > 0.6
    assert abs(two["best"] - one["best"]) < 0.08


def test_plateau_restores_best_then_decays_lr():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    scores = iter([0.1, 0.5, 0.3, 0.2, 0.6, 0.4, 0.3, 0.9])
    snapshots = {}

    def validate(m):
        snapshots[len(snapshots) + 1] = m.weight.detach().clone()
        return {"ndcg@10": next(scores)}

    loss = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])  # noqa: E731
    res = train(net, loss, IndexBatches(x, y), validate=validate,
                config=TrainConfig(epochs=8, lr=0.05, batch_size=16, patience=2, lr_decay=0.3, max_decays=1,
                                   progress=False))
    assert [r.get("lr") for r in res.history][3] == pytest.approx(0.015)
    assert res.best_epoch == 5 and len(res.history) == 7
    assert torch.equal(net.weight, snapshots[5])


def test_decay_patience_decays_at_the_first_miss_and_stops_after_patience():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    # best at 2; epoch 3 misses -> decay at once; then 4 and 5 miss, 6 is a new best,
    # 7, 8, 9 miss -> stop after epoch 9 (patience 3), epoch 10 never runs
    scores = iter([0.1, 0.5, 0.3, 0.4, 0.45, 0.6, 0.5, 0.5, 0.5, 0.9])
    loss = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])  # noqa: E731
    res = train(net, loss, IndexBatches(x, y), validate=lambda m: {"ndcg@10": next(scores)},
                config=TrainConfig(epochs=10, lr=0.05, batch_size=16, patience=3, decay_patience=1,
                                   lr_decay=0.3, max_decays=1, progress=False))
    lrs = [r.get("lr") for r in res.history]
    assert lrs[2] == pytest.approx(0.015) and [x for x in lrs if x is not None] == [pytest.approx(0.015)]
    assert res.best_epoch == 6 and len(res.history) == 9


def test_on_decay_runs_once_per_plateau_before_the_next_epoch():
    from shopml.training import Hooks

    class Log(Hooks):
        def __init__(self):
            self.events = []

        def on_decay(self, model, opt, decays):
            self.events.append(("decay", decays))

        def after_epoch(self, model, epoch):
            self.events.append(("epoch", epoch))

    scores = iter([0.5, 0.3, 0.2, 0.6, 0.4, 0.3, 0.2, 0.1])
    x = torch.randn(32, 2)
    hooks = Log()
    train(torch.nn.Linear(2, 1), lambda m, b: m(b[0]).square().mean(), IndexBatches(x),
          validate=lambda m: {"ndcg@10": next(scores)}, hooks=hooks,
          config=TrainConfig(epochs=8, batch_size=16, patience=2, lr_decay=0.3, max_decays=2, progress=False))
    # plateaus end epochs 3 and 6; the third plateau (epoch 8) finds no decay left
    assert hooks.events == [("epoch", 1), ("epoch", 2), ("epoch", 3), ("decay", 1), ("epoch", 4), ("epoch", 5),
                            ("epoch", 6), ("decay", 2), ("epoch", 7), ("epoch", 8)]


def test_train_restores_the_callers_thread_count():
    old = torch.get_num_threads()
    seen = []
    net = torch.nn.Linear(2, 1)
    x, y = torch.randn(32, 2), torch.randn(32, 1)

    def loss(m, b):
        seen.append(torch.get_num_threads())
        return torch.nn.functional.mse_loss(m(b[0]), b[1])

    other = 1 if old != 1 else 2
    train(net, loss, IndexBatches(x, y), config=TrainConfig(epochs=1, batch_size=16, threads=other, progress=False))
    assert set(seen) == {other} and torch.get_num_threads() == old


def test_a_diverged_loss_stops_the_fit_with_a_training_error():
    from shopml.errors import TrainingError

    x = torch.randn(64, 4)
    x[5, 2] = float("nan")  # one bad input row makes every epoch's mean loss NaN
    y = torch.zeros(64, dtype=torch.long)
    net = torch.nn.Linear(4, 2)
    with pytest.raises(TrainingError, match="epoch 1"):
        train(net, lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1]), IndexBatches(x, y),
              config=TrainConfig(epochs=3, batch_size=16, progress=False))
