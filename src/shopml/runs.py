"""Run folders: every fitted component of one training run, with a verifiable manifest.

A *run* is a folder::

    manifest.json                 format, created_at, params, library versions, data
                                  fingerprint, metrics, key fingerprint, components,
                                  skipped jobs, and the sha256 of every other file
    models/<name>/model.json      one model folder per component (see shopml.artifacts)
    models/<name>/tensors.safetensors
    ids/items.json, ids/users.json  id maps (index = position + 1; users are pseudonyms)
    extras.json                   report material computed at fit time (curves, samples)

:func:`save_run` writes the whole folder to a temporary sibling and renames it into
place, so a crash (even kill -9) mid-save leaves the previous run at that path loadable.
:func:`load_run` reads JSON and safetensors only (never pickle) and refuses, with
:class:`~shopml.errors.ArtifactError`, a run whose manifest is missing, malformed, of
another format, or whose files are missing or do not match their recorded sha256.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> _ = save_run(d, components={}, params={"seed": 0}, metrics={"x": 1.0},
    ...              key=bytes(32))
    >>> load_run(d).manifest["metrics"]
    {'x': 1.0}
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopml.artifacts import _recover, atomic_dir
from shopml.artifacts import json_default as _json_default
from shopml.errors import ArtifactError

__all__ = [
    "Run",
    "save_run",
    "load_run",
    "verify_run",
    "register_component",
    "data_fingerprint",
    "library_versions",
]

RUN_FORMAT = "shopml-run"
RUN_VERSION = 1
MANIFEST = "manifest.json"
_REGISTERED: dict[str, type] = {}
_LIBS = ["numpy", "scipy", "torch", "polars", "pyarrow", "safetensors", "scikit-learn", "fastapi"]


@dataclass
class Run:
    """A loaded run: its folder, manifest, fitted components (by name) and report extras."""

    path: Path
    manifest: dict[str, Any]
    components: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    items: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest.get("metrics", {})

    def get(self, name: str):
        """The component called ``name``, or None when the run does not have it."""
        return self.components.get(name)


def library_versions() -> dict[str, str]:
    """Versions of Python, shopml and the numeric libraries, for the manifest."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for lib in ["shopml", *_LIBS]:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            pass
    return out


def data_fingerprint(events) -> dict[str, Any]:
    """A content fingerprint of an events DataFrame: sha256 over its schema and a stable
    per-row hash, plus the row count and time range (so a run names the data it saw).

    >>> import polars as pl
    >>> a = data_fingerprint(pl.DataFrame({"x": [1, 2]}))
    >>> a == data_fingerprint(pl.DataFrame({"x": [1, 2]})), a["n_rows"]
    (True, 2)
    """
    h = hashlib.sha256()
    h.update(json.dumps([[c, str(t)] for c, t in events.schema.items()]).encode())
    h.update(events.hash_rows(seed=0).to_numpy().tobytes())
    out: dict[str, Any] = {"sha256": h.hexdigest(), "n_rows": events.height, "method": "polars.hash_rows"}
    if "timestamp" in events.columns and events.height:
        out["time_min"] = str(events["timestamp"].min())
        out["time_max"] = str(events["timestamp"].max())
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _class_path(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _dump(obj) -> str:
    return json.dumps(obj, indent=1, default=_json_default, allow_nan=False)


def save_run(
    path,
    *,
    components: dict[str, Any],
    params: dict | None = None,
    metrics: dict | None = None,
    data: dict | None = None,
    skipped: list[dict] | None = None,
    extras: dict | None = None,
    items: list[str] | None = None,
    users: list[str] | None = None,
    key: bytes | None = None,
) -> Path:
    """Save fitted ``components`` (name -> estimator with ``save(path)``/``load(path)``) and
    their context as one run folder at ``path``, atomically. Returns ``path``.

    ``users`` must already be pseudonyms (the event layer hashes ids at ingestion).
    """
    from shopml.privacy import key_fingerprint

    path = Path(path)
    with atomic_dir(path) as tmp:
        entries = []
        for name, est in components.items():
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ArtifactError(f"component name {name!r} must be alphanumeric")
            est.save(tmp / "models" / name)
            entries.append({"name": name, "class": _class_path(est), "path": f"models/{name}"})
        (tmp / "ids").mkdir()
        (tmp / "ids" / "items.json").write_text(_dump(list(items or [])))
        (tmp / "ids" / "users.json").write_text(_dump(list(users or [])))
        (tmp / "extras.json").write_text(_dump(extras or {}))
        files = {
            p.relative_to(tmp).as_posix(): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        manifest = {
            "format": RUN_FORMAT,
            "version": RUN_VERSION,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "params": params or {},
            "versions": library_versions(),
            "data": data or {},
            "metrics": metrics or {},
            "key_fingerprint": key_fingerprint(key),
            "components": entries,
            "skipped": skipped or [],
            "files": files,
        }
        (tmp / MANIFEST).write_text(_dump(manifest))
    return path


def verify_run(path) -> dict[str, Any]:
    """Check a run folder's manifest and every file's sha256; return the manifest.

    Raises ArtifactError naming the first problem found.
    """
    path = Path(path)
    _recover(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: no run folder here")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise ArtifactError(f"{path}: not a shopml run (manifest.json is missing)")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{mpath}: corrupted manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != RUN_FORMAT:
        raise ArtifactError(f"{mpath}: not a shopml run manifest")
    if manifest.get("version") != RUN_VERSION:
        raise ArtifactError(f"{mpath}: unsupported run version {manifest.get('version')!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not isinstance(manifest.get("components"), list):
        raise ArtifactError(f"{mpath}: manifest lacks its file list or components")
    for rel, digest in files.items():
        p = (path / rel).resolve()
        if path.resolve() not in p.parents:
            raise ArtifactError(f"{mpath}: file entry {rel!r} points outside the run")
        if not p.is_file():
            raise ArtifactError(f"{path}: {rel} is missing")
        if _sha256(p) != digest:
            raise ArtifactError(f"{path}: {rel} does not match its sha256 in the manifest (corrupted?)")
    for c in manifest["components"]:
        if f"{c.get('path')}/model.json" not in files:
            raise ArtifactError(f"{mpath}: component {c.get('name')!r} has no model.json listed")
    return manifest


def register_component(cls: type) -> type:
    """Allow a non-shopml estimator class (with ``save``/``load``) in run folders.

    A manifest may otherwise only name ``shopml.*`` classes, so an edited manifest cannot
    make :func:`load_run` import arbitrary code. Usable as a class decorator.
    """
    _REGISTERED[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def _load_component(path: Path, entry: dict):
    cls_path = str(entry.get("class", ""))
    if cls_path in _REGISTERED:
        return _REGISTERED[cls_path].load(path / entry["path"])
    # Only shopml's own classes may be named: a manifest must not choose arbitrary code.
    if not cls_path.startswith("shopml."):
        raise ArtifactError(f"{path}: component {entry.get('name')!r} names a non-shopml class")
    module, _, qual = cls_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), qual)
    except (ImportError, AttributeError) as e:
        raise ArtifactError(f"{path}: component class {cls_path} is not available ({e})") from None
    return cls.load(path / entry["path"])


def load_run(path, *, components: bool = True, check_key: bool = False, key: bytes | None = None) -> Run:
    """Load a run folder after verifying it (see :func:`verify_run`); no pickle anywhere.

    ``components=False`` skips loading the estimators (e.g. for the report).
    ``check_key=True`` refuses a run made with another pseudonymization key, since its
    user pseudonyms would not match the ids hashed at serving time.
    """
    from shopml.privacy import key_fingerprint

    path = Path(path)
    manifest = verify_run(path)
    if check_key and manifest.get("key_fingerprint") != key_fingerprint(key):
        raise ArtifactError(
            f"{path}: the run was made with another pseudonymization key "
            f"(fingerprint {manifest.get('key_fingerprint')}); set SHOPML_KEY/SHOPML_KEY_FILE to it"
        )
    try:
        extras = json.loads((path / "extras.json").read_text())
        items = json.loads((path / "ids" / "items.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{path}: cannot read run data ({e})") from None
    loaded = {}
    if components:
        for entry in manifest["components"]:
            try:
                loaded[entry["name"]] = _load_component(path, entry)
            except ArtifactError:
                raise
            except Exception as e:  # an estimator's own load refusing its folder
                raise ArtifactError(f"{path}: component {entry.get('name')!r} failed to load ({e})") from None
    return Run(path=path, manifest=manifest, components=loaded, extras=extras, items=items)
