"""Model folders: JSON + safetensors, written atomically, loaded without pickle. Run
folders (many model folders + a manifest) are :mod:`shopml.runs`, built on this module.

A *model folder* holds one fitted estimator::

    model.json          {"format": "shopml-model", "version": 1, "kind": ..., "params": ..., "meta": ...}
    tensors.safetensors named float/int tensors (weights, id indices, statistics)

Writes go to a temporary sibling folder that is renamed into place, so a crash (even
kill -9) during a save leaves any previous folder at that path intact and loadable. A
save never replaces a file or a folder shopml did not write (ConfigError instead).
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
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shopml.errors import ArtifactError, ConfigError

__all__ = [
    "write_model_dir",
    "read_model_dir",
    "ModelDir",
    "atomic_dir",
    "is_shopml_folder",
    "atomic_write_text",
]

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


def _read_format(path: Path) -> str | None:
    """The ``format`` field of a JSON manifest, or None when it is absent or unreadable."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc.get("format") if isinstance(doc, dict) else None


def is_shopml_folder(path: Path) -> bool:
    """True for a folder :class:`atomic_dir` may replace: empty, or written by shopml
    (a model folder, a run, a training checkpoint). Anything else may hold a user's files.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> is_shopml_folder(d), (d / "notes.txt").write_text("mine") > 0, is_shopml_folder(d)
    (True, True, False)
    """
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    if not any(path.iterdir()):
        return True
    if _read_format(path / "model.json") == MODEL_FORMAT or _read_format(path / "manifest.json") == "shopml-run":
        return True
    return (path / "state.json").is_file() and (path / "weights.safetensors").is_file()  # training checkpoint


def _is_model_folder(path: Path) -> bool:
    # A model save replaces only an empty folder or another model, never a run or checkpoint.
    return not any(path.iterdir()) or _read_format(path / "model.json") == MODEL_FORMAT


# Leftovers of an interrupted atomic_dir save: .NAME.[PID.]UUID.tmp (new folder being
# written) and .NAME.UUID.old (previous folder moved aside, not yet deleted).
_LEFTOVER = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[0-9a-f]{32}\.(?P<kind>tmp|old)$")


def _leftovers(path: Path) -> tuple[list[Path], list[tuple[Path, int | None]]]:
    """(.old folders oldest first, [(.tmp folder, writer pid)]) left beside ``path``."""
    olds, tmps = [], []
    if not path.parent.is_dir():
        return olds, tmps
    for p in path.parent.iterdir():
        m = _LEFTOVER.match(p.name)
        if m is None or m["name"] != path.name or p.is_symlink() or not p.is_dir():
            continue
        if m["kind"] == "old":
            olds.append(p)
        else:
            tmps.append((p, int(m["pid"]) if m["pid"] else None))
    olds.sort(key=lambda p: p.stat().st_mtime)
    return olds, tmps


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tidy(path: Path) -> None:
    """Before a save: recover the newest complete previous folder if a crash left ``path``
    missing, then delete the other leftovers of interrupted saves of ``path`` (a .tmp
    folder is kept while the process writing it is alive)."""
    _recover(path)
    olds, tmps = _leftovers(path)
    for p in olds:
        shutil.rmtree(p, ignore_errors=True)
    for p, pid in tmps:
        if pid is None or not _alive(pid):
            shutil.rmtree(p, ignore_errors=True)


class atomic_dir:
    """Context manager yielding a temporary folder that replaces ``path`` on success.

    Only a missing path, an empty folder, or a folder ``replaceable(path)`` accepts (by
    default :func:`is_shopml_folder`) is ever replaced: a file, a symbolic link or a
    folder of someone's documents raises ConfigError before anything is written, and is
    checked again just before the swap. The old folder is moved aside, the new one renamed
    in, then the old one deleted; a crash at any point leaves either the old or the new
    folder complete at ``path`` (or, between the two renames, the old one at
    ``.NAME.<uuid>.old``, which readers and the next save recover).
    """

    def __init__(self, path: Path, *, replaceable=None):
        self.path = Path(path)
        self.replaceable = replaceable or is_shopml_folder
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")

    def _check(self) -> None:
        p = self.path
        if p.is_symlink():
            raise ConfigError(f"{p}: is a symbolic link; shopml writes only to a new path or a folder it wrote")
        if p.exists() and not p.is_dir():
            raise ConfigError(f"{p}: is an existing file; shopml writes folders only to a new path, "
                              "an empty folder or a folder it wrote before")
        if p.is_dir() and not self.replaceable(p):
            raise ConfigError(f"{p}: is a folder with files shopml did not write; choose a new or empty folder")

    def __enter__(self) -> Path:
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise ConfigError(f"{self.path}: its parent {self.path.parent} is a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _tidy(self.path)
        self._check()
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        try:
            _fsync_dir(self.tmp)
            self._check()  # again: the folder may have changed while the new one was written
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
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
    if path.exists() or path.is_symlink():
        return
    olds, _ = _leftovers(path)
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
    with atomic_dir(Path(path), replaceable=_is_model_folder) as tmp:
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
