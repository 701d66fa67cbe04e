"""Run folders: round trip, refusal of damaged or edited runs, the component registry,
crash safety, no pickle."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from shopml.artifacts import read_model_dir, write_model_dir
from shopml.errors import ArtifactError
from shopml.runs import load_run, register_component, save_run, verify_run


@register_component
class Weights:
    """A minimal estimator-like component: one tensor, saved as a model folder."""

    def __init__(self, w):
        self.w = np.asarray(w, dtype=np.float32)

    def save(self, path):
        write_model_dir(path, kind="weights", params={}, tensors={"w": self.w})

    @classmethod
    def load(cls, path):
        return cls(read_model_dir(path, kind="weights").tensors["w"])


def _save(path, value=1.0):
    return save_run(
        path,
        components={"a": Weights(np.full(4, value)), "b": Weights([value])},
        params={"seed": 0},
        metrics={"a": {"ndcg@10": value}},
        items=["i1", "i2"],
        users=["0" * 32],
        extras={"curve": [1, 2, 3]},
    )


def test_round_trip_and_manifest(tmp_path):
    run = load_run(_save(tmp_path / "run", 2.0))
    assert run.components["a"].w.tolist() == [2.0] * 4
    assert run.metrics == {"a": {"ndcg@10": 2.0}}
    assert run.items == ["i1", "i2"] and run.extras == {"curve": [1, 2, 3]}
    m = run.manifest
    assert {c["name"] for c in m["components"]} == {"a", "b"}
    assert "torch" in m["versions"] and len(m["key_fingerprint"]) == 16
    assert "models/a/tensors.safetensors" in m["files"]


def test_overwrite_replaces_previous_run(tmp_path):
    _save(tmp_path / "run", 1.0)
    _save(tmp_path / "run", 3.0)
    assert load_run(tmp_path / "run").components["b"].w.tolist() == [3.0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]  # no temp folders left


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "corrupted manifest"),
        (lambda d: (d / "manifest.json").write_text('{"format": "other"}'), "not a shopml run"),
        (lambda d: (d / "models/a/tensors.safetensors").unlink(), "is missing"),
        (lambda d: _flip_byte(d / "models/a/tensors.safetensors"), "sha256"),
        (lambda d: _flip_byte(d / "extras.json"), "sha256"),
        (lambda d: _edit_manifest(d, version=99), "unsupported run version"),
        (lambda d: _edit_manifest(d, files={"../x": "0"}), "outside the run"),
    ],
)
def test_damaged_run_is_refused(tmp_path, damage, message):
    d = _save(tmp_path / "run")
    damage(d)
    with pytest.raises(ArtifactError, match=message):
        load_run(d)


@pytest.mark.parametrize("edit", [
    lambda m: m["metrics"].update(a={"ndcg@10": 0.99}),
    lambda m: m["components"][0].update({"class": "os.system"}),
    lambda m: m.update(key_fingerprint="0" * 16),
])
def test_any_manifest_edit_is_refused(tmp_path, edit):
    d = _save(tmp_path / "run")
    m = json.loads((d / "manifest.json").read_text())
    edit(m)
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="signature does not match|another pseudonymization key"):
        load_run(d)


def test_changed_tensor_with_updated_checksum_is_refused(tmp_path):
    from safetensors.numpy import save_file

    d = _save(tmp_path / "run")
    save_file({"w": np.full(4, 7.0, dtype=np.float32)}, str(d / "models/a/tensors.safetensors"))
    m = json.loads((d / "manifest.json").read_text())
    m["files"]["models/a/tensors.safetensors"] = hashlib.sha256(
        (d / "models/a/tensors.safetensors").read_bytes()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(m, indent=1))
    with pytest.raises(ArtifactError, match="signature does not match"):
        load_run(d)


def test_unsigned_run_is_refused(tmp_path):
    d = _save(tmp_path / "run")
    (d / "manifest.sig").unlink()
    with pytest.raises(ArtifactError, match="not a signed shopml run"):
        load_run(d)


def _resign(d):
    """Sign an edited manifest with the run's key, as someone holding the key could."""
    from shopml.privacy import load_key
    from shopml.runs import _sign

    mac = _sign((d / "manifest.json").read_bytes(), load_key())
    (d / "manifest.sig").write_text(json.dumps({"hmac_sha256": mac}))


@pytest.mark.parametrize("cls", ["os.system", "shopml.training.torch", "shopml.recommend.nets.SASRec",
                                 "shopml.runs.Run", "tests.evil.Module", ""])
def test_component_class_comes_only_from_the_registry(tmp_path, monkeypatch, cls):
    import importlib

    import torch

    d = _save(tmp_path / "run")
    _edit_manifest(d, components=[{"name": "a", "class": cls, "path": "models/a"}])
    _resign(d)

    def boom(*a, **k):
        raise AssertionError("the loader imported or torch.load-ed something a manifest named")

    monkeypatch.setattr(torch, "load", boom)
    monkeypatch.setattr(importlib, "import_module", boom)
    with pytest.raises(ArtifactError, match="not a registered shopml component class"):
        load_run(d)


def test_saving_an_unregistered_class_is_refused(tmp_path):
    class Loose(Weights):  # same save/load, but never registered
        pass

    with pytest.raises(ArtifactError, match="not a registered component class"):
        save_run(tmp_path / "run", components={"a": Loose([1.0])})
    assert not (tmp_path / "run").exists()


def test_builtin_estimators_are_registered():
    from shopml.recommend.baselines import MostPopular
    from shopml.runs import _component_class

    assert _component_class("shopml.recommend.baselines.MostPopular") is MostPopular


def test_json_only_read_of_a_run_made_under_another_key(tmp_path):
    d = save_run(tmp_path / "run", components={}, metrics={"x": 1.0}, key=bytes(32))
    run = load_run(d, components=False)  # the report reads runs from elsewhere
    assert run.metrics == {"x": 1.0} and run.verified is False
    assert load_run(d, components=False, key=bytes(32)).verified is True
    with pytest.raises(ArtifactError, match="another pseudonymization key"):
        load_run(d)  # components need the run's own key
    (d / "manifest.json").write_text((d / "manifest.json").read_text().replace('"x": 1.0', '"x": 2.0'))
    with pytest.raises(ArtifactError, match="signature does not match"):
        load_run(d, components=False, key=bytes(32))


def test_key_mismatch_refused_when_checked(tmp_path):
    d = save_run(tmp_path / "run", components={}, key=bytes(32))
    load_run(d, check_key=True, key=bytes(32))
    with pytest.raises(ArtifactError, match="another pseudonymization key"):
        load_run(d, check_key=True, key=bytes([1]) * 32)


def test_load_never_unpickles(tmp_path, monkeypatch):
    import torch

    d = _save(tmp_path / "run")

    def boom(*a, **k):
        raise AssertionError("pickle used while loading a run")

    for mod, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")]:
        monkeypatch.setattr(mod, name, boom)
    assert load_run(d).components["a"].w.shape == (4,)


_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    import numpy as np
    from shopml.artifacts import write_model_dir
    from shopml.runs import register_component, save_run
    mode = sys.argv[2]

    @register_component
    class Slow:
        @classmethod
        def load(cls, path):
            return cls()

        def save(self, path):
            write_model_dir(path, kind="weights", params={}, tensors={"w": np.zeros(1 << 20)})
            if mode == "mid-write":
                print("writing", flush=True)
                time.sleep(60)

    if mode == "between-renames":
        real = os.rename
        def rename(a, b):
            real(a, b)
            if str(b).endswith(".old"):  # old run moved aside, new one not yet in place
                os.kill(os.getpid(), signal.SIGKILL)
        os.rename = rename
    save_run(sys.argv[1], components={"a": Slow()})
    """
)


@pytest.mark.parametrize("mode", ["mid-write", "between-renames"])
def test_kill_9_during_save_leaves_old_run_loadable(tmp_path, mode):
    d = _save(tmp_path / "run", 5.0)
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_SCRIPT, str(d), mode], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    if mode == "mid-write":
        assert proc.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    run = load_run(d)
    assert run.components["a"].w.tolist() == [5.0] * 4
    verify_run(d)


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_manifest(d, **changes):
    m = json.loads((d / "manifest.json").read_text())
    m.update(changes)
    (d / "manifest.json").write_text(json.dumps(m))


def test_runs_saved_before_the_behaviour_split_still_name_loadable_classes():
    from shopml.customers.estimator import CustomerForecaster
    from shopml.runs import _component_class
    from shopml.sessions.baselines import VSKNNRecommender
    from shopml.sessions.estimator import SessionRecommender

    assert _component_class("shopml.behaviour.sessions.SessionRecommender") is SessionRecommender
    assert _component_class("shopml.behaviour.knn.VSKNNRecommender") is VSKNNRecommender
    assert _component_class("shopml.behaviour.customers.CustomerForecaster") is CustomerForecaster
    assert _component_class("shopml.behaviour.sessions.NotAClass") is None
