"""Model and run folders: JSON + safetensors, written atomically, loaded without pickle.

A *model folder* holds one fitted estimator::

    model.json          {"format": "shopml-model", "version": 1, "kind": ..., "params": ..., "meta": ...}
    tensors.safetensors named float/int tensors (weights, id indices, statistics)

Writes go to a temporary sibling folder that is renamed into place, so a crash (even
kill -9) during a save leaves any previous folder at that path intact and loadable.
Loading never unpickles: JSON and safetensors only.

Example:
    >>> import tempfile, numpy as np, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "m"
    >>> write_model_dir(d, kind="demo", params={"k": 3}, tensors={"w": np.ones(2)}, meta={"ids": ["a"]})
    >>> m = read_model_dir(d, kind="demo")
    >>> m.params["k"], m.tensors["w"].tolist(), m.meta["ids"]
    (3, [1.0, 1.0], ['a'])
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shopml.errors import ArtifactError

__all__ = [
    "write_model_dir",
    "read_model_dir",
    "ModelDir",
    "atomic_dir",
    "atomic_write_text",
    "Run",
    "save_run",
    "load_run",
    "verify_run",
]

# Run folders (many model folders + manifest.json) live in shopml.runs; they are exposed
# here lazily because shopml.runs itself builds on the helpers of this module.
_RUN_NAMES = {"Run", "save_run", "load_run", "verify_run"}


def __getattr__(name: str):
    if name in _RUN_NAMES:
        from shopml import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'shopml.artifacts' has no attribute {name!r}")

MODEL_FORMAT = "shopml-model"
MODEL_VERSION = 1


@dataclass
class ModelDir:
    kind: str
    params: dict[str, Any]
    tensors: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)


def json_default(o: Any):
    """``json.dumps(default=...)`` hook: numpy scalars and arrays become Python values, paths strings."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file via a temporary sibling and os.replace (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class atomic_dir:
    """Context manager yielding a temporary folder that replaces ``path`` on success.

    The old folder is moved aside, the new one renamed in, then the old one deleted; a
    crash at any point leaves either the old or the new folder complete at ``path``
    (or, between the two renames, the old one at ``path.old-*``, which readers recover).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        _fsync_dir(self.tmp)
        old = None
        if self.path.exists():
            old = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.old")
            os.rename(self.path, old)
        os.rename(self.tmp, self.path)
        _fsync_dir(self.path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False


def _fsync_dir(path: Path) -> None:
    for p in list(Path(path).iterdir()) + [Path(path)]:
        if p.is_file() or p == Path(path):
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _recover(path: Path) -> None:
    """If a crash hit between the two renames of :class:`atomic_dir`, restore the old folder."""
    if path.exists():
        return
    olds = sorted(path.parent.glob(f".{path.name}.*.old"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.rename(olds[-1], path)


def write_model_dir(path, *, kind: str, params: dict, tensors: dict, meta: dict | None = None) -> None:
    """Save an estimator atomically: ``params`` and ``meta`` as JSON, ``tensors`` as safetensors.

    ``tensors`` values may be numpy arrays or torch tensors; they are stored contiguous.
    """
    from safetensors.numpy import save_file

    arrays = {}
    for name, t in tensors.items():
        if hasattr(t, "detach"):
            t = t.detach().cpu().numpy()
        arrays[name] = np.ascontiguousarray(t)
    doc = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "kind": kind, "params": params, "meta": meta or {}}
    with atomic_dir(Path(path)) as tmp:
        save_file(arrays, str(tmp / "tensors.safetensors"))
        (tmp / "model.json").write_text(json.dumps(doc, indent=1))


def read_model_dir(path, *, kind: str | None = None) -> ModelDir:
    """Load a folder written by :func:`write_model_dir`; refuse anything else with ArtifactError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    _recover(path)
    manifest = path / "model.json"
    if not manifest.is_file():
        raise ArtifactError(f"{path}: not a shopml model folder (model.json is missing)")
    try:
        doc = json.loads(manifest.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{manifest}: corrupted manifest ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise ArtifactError(f"{manifest}: not a shopml model manifest")
    if doc.get("version") != MODEL_VERSION:
        raise ArtifactError(f"{manifest}: unsupported version {doc.get('version')!r}")
    if kind is not None and doc.get("kind") != kind:
        raise ArtifactError(f"{manifest}: holds a {doc.get('kind')!r} model, expected {kind!r}")
    try:
        tensors = load_file(str(path / "tensors.safetensors"))
    except (SafetensorError, OSError, ValueError) as e:
        raise ArtifactError(f"{path / 'tensors.safetensors'}: cannot be read ({e})") from None
    return ModelDir(kind=doc["kind"], params=doc.get("params", {}), tensors=tensors, meta=doc.get("meta", {}))
