"""Progress events: stage fields reach every event, the training loops emit epochs, and a
library call leaves torch's thread setting as it found it."""

from __future__ import annotations

import torch

from shopml import progress
from shopml.training import IndexBatches, TrainConfig, torch_threads, train


def test_stage_fields_are_added_and_removed():
    seen = []
    with progress.listen(seen.append):
        with progress.stage(job="recommend", model="sasrec", budget_s=5.0):
            progress.emit("epoch", epoch=1, epochs=2)
        progress.emit("epoch", epoch=9, epochs=9)
    assert seen[0]["kind"] == "stage" and seen[0]["budget_s"] == 5.0
    assert seen[1] == {"kind": "epoch", "job": "recommend", "model": "sasrec", "budget_s": 5.0, "epoch": 1, "epochs": 2}
    assert "job" not in seen[2]


def test_no_listener_means_no_step_events_and_no_error():
    assert not progress.active()
    progress.emit("epoch", epoch=1)  # only logged


def test_train_emits_one_epoch_event_per_epoch_with_the_metric():
    net = torch.nn.Linear(3, 1)
    x, y = torch.randn(64, 3), torch.randn(64, 1)

    def loss(m, b):
        return torch.nn.functional.mse_loss(m(b[0]), b[1])

    seen = []
    with progress.listen(seen.append), progress.stage(job="j", model="m"):
        train(net, loss, IndexBatches(x, y), validate=lambda m: {"neg": -float(loss(m, (x, y)))},
              config=TrainConfig(epochs=3, monitor="neg", patience=5, batch_size=16))
    epochs = [e for e in seen if e["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all(e["job"] == "j" and e["monitor"] == "neg" and isinstance(e["metric"], float) for e in epochs)


def test_torch_threads_restores_the_callers_setting():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
