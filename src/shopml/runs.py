"""Run folders: every fitted component of one training run, with a signed manifest.

A *run* is a folder::

    manifest.json                 format, created_at, params, library versions, data
                                  fingerprint, metrics, key fingerprint, components,
                                  skipped jobs, and the sha256 of every other file
    manifest.sig                  HMAC-SHA256 of manifest.json's bytes under the run's key
    models/<name>/model.json      one model folder per component (see shopml.artifacts)
    models/<name>/tensors.safetensors
    ids/items.json, ids/users.json  id maps (index = position + 1; users are pseudonyms)
    extras.json                   report material computed at fit time (curves, samples)
    report.html                   (optional) written later by shopml.report

:func:`save_run` writes only to a path :func:`check_run_target` accepts (new, an empty
folder, or an earlier run), into a temporary sibling that is renamed into place, so a
crash (even kill -9) mid-save leaves the previous run at that path loadable.
:func:`load_run` reads JSON and safetensors only (never pickle) and refuses, with
:class:`~shopml.errors.ArtifactError`, a run whose manifest is missing, malformed, of
another format, not signed by the current key, or whose files do not match their sha256.
Because the signature covers the sha256 list, editing any file (and updating its
checksum) is refused too. Component classes come only from the registry
(:func:`register_component` plus shopml's own estimators), never from an import path.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> _ = save_run(d, components={}, params={"seed": 0}, metrics={"x": 1.0},
    ...              key=bytes(32))
    >>> load_run(d, key=bytes(32)).manifest["metrics"]
    {'x': 1.0}
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import importlib
import json
import logging
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopml.artifacts import _recover, atomic_dir
from shopml.artifacts import json_default as _json_default
from shopml.errors import ArtifactError, ConfigError
from shopml.targets import check_folder_target

__all__ = [
    "Run",
    "save_run",
    "load_run",
    "verify_run",
    "check_run_target",
    "register_component",
    "data_fingerprint",
    "library_versions",
]

log = logging.getLogger(__name__)

RUN_FORMAT = "shopml-run"
RUN_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
REPORT = "report.html"
_LIBS = ["numpy", "scipy", "torch", "polars", "pyarrow", "safetensors", "scikit-learn", "fastapi"]
# Temporary files of an interrupted report write inside the run (artifacts.atomic_write_text).
_REPORT_TMP = re.compile(r"^\.report\.html\.[0-9a-f]{32}\.tmp$")


@dataclass
class Run:
    """A loaded run: its folder, manifest, fitted components (by name) and report extras.

    ``fingerprint`` names the run without its path (sha256 prefix of manifest.json);
    ``verified`` is False only for a JSON-only load (``components=False``) of a run whose
    signature could not be checked because it was made under another key.
    """

    path: Path
    manifest: dict[str, Any]
    components: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    items: list[str] = field(default_factory=list)
    fingerprint: str = ""
    verified: bool = True

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


# ---------------------------------------------------------------------- where a run may go
def _run_folder_problem(path: Path) -> str | None:
    """Why the existing folder ``path`` may not be replaced by a run, or None when it may:
    it is empty, or it is a shopml run holding only the run's own files (so a user's file
    dropped into a run folder is never deleted by the next save)."""
    if not any(path.iterdir()):
        return None
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != RUN_FORMAT:
        return "exists and is neither an empty folder nor a shopml run"
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    own = {MANIFEST, SIGNATURE, REPORT, *files}
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path).as_posix()
        if p.is_dir() and not p.is_symlink():
            continue
        if rel not in own and not _REPORT_TMP.match(rel):
            return f"is a shopml run but also holds {rel!r}, which is not part of the run"
    return None


def check_run_target(path, *, inputs=()) -> Path:
    """Refuse, with a one-line ConfigError, a run folder path that a save could damage;
    return the path made absolute.

    A run may be written to a path that does not exist, an empty folder, or an earlier
    shopml run. Refused: an empty path or '.', a path under /proc, /sys or /dev, a path
    that is, contains or lies inside one of ``inputs`` (the user's input files and
    folders), a symbolic link, an existing file, a folder with other files, a parent
    that is a file, or a parent (or nearest existing ancestor) that is not writable.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "events.csv").write_text("user_id,item_id\\n") > 0
    True
    >>> check_run_target(d / "run", inputs=[d / "events.csv"]) == d / "run"
    True
    >>> try:
    ...     check_run_target(d / "events.csv", inputs=[d / "events.csv"])
    ... except ConfigError as e:
    ...     print("refused:", "is the input" in str(e))
    refused: True
    """
    return check_folder_target(path, inputs=inputs, noun="run", folder_problem=_run_folder_problem)


# ---------------------------------------------------------------------- manifest signature
def _signing_key(key: bytes) -> bytes:
    # A key derived for signing only: a MAC of a manifest can never equal a user pseudonym.
    return hmac.new(key, b"shopml-run-manifest-signature-v1", hashlib.sha256).digest()


def _sign(manifest_bytes: bytes, key: bytes) -> str:
    return hmac.new(_signing_key(key), manifest_bytes, hashlib.sha256).hexdigest()


def _check_signature(path: Path, manifest_bytes: bytes, key: bytes) -> None:
    try:
        doc = json.loads((path / SIGNATURE).read_text())
        mac = doc["hmac_sha256"] if isinstance(doc, dict) else None
    except (OSError, ValueError, KeyError):
        raise ArtifactError(f"{path}: not a signed shopml run ({SIGNATURE} is missing or unreadable)") from None
    if not isinstance(mac, str) or not hmac.compare_digest(mac, _sign(manifest_bytes, key)):
        raise ArtifactError(f"{path}: {MANIFEST} was changed after it was saved (its signature does not match)")


def _class_path(obj) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _dump(obj) -> str:
    return json.dumps(obj, indent=1, default=_json_default, allow_nan=False)


def _resolve_key(key: bytes | None) -> bytes:
    from shopml.privacy import load_key

    return load_key() if key is None else bytes(key)


def _save_components(tmp: Path, components: dict[str, Any]) -> list[dict]:
    entries = []
    for name, est in components.items():
        if not name.replace("_", "").replace("-", "").isalnum():
            raise ArtifactError(f"component name {name!r} must be alphanumeric")
        cls_path = _class_path(est)
        # Refused at save, not only at load: a run that could never be loaded is no run.
        if _component_class(cls_path) is not type(est):
            raise ArtifactError(f"component {name!r}: {cls_path} is not a registered component class "
                                "(decorate it with shopml.runs.register_component)")
        est.save(tmp / "models" / name)
        entries.append({"name": name, "class": cls_path, "path": f"models/{name}"})
    return entries


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
    """Save fitted ``components`` (name -> estimator with ``save(path)``/``load(path)``, of a
    registered class) and their context as one run folder at ``path``, atomically, with the
    manifest signed under ``key`` (default: :func:`shopml.privacy.load_key`). Returns ``path``.

    ``path`` must pass :func:`check_run_target` (ConfigError otherwise). ``users`` must
    already be pseudonyms (the event layer hashes ids at ingestion).
    """
    from shopml.privacy import key_fingerprint

    path = Path(path)
    check_run_target(path)
    key = _resolve_key(key)
    with atomic_dir(path, replaceable=lambda p: _run_folder_problem(p) is None) as tmp:
        entries = _save_components(tmp, components)
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
        body = _dump(manifest).encode()
        (tmp / MANIFEST).write_bytes(body)
        (tmp / SIGNATURE).write_text(json.dumps({"alg": "HMAC-SHA256", "hmac_sha256": _sign(body, key)}))
    return path


def verify_run(path, *, key: bytes | None = None) -> dict[str, Any]:
    """Check a run folder's manifest, its signature under ``key`` (default: the current
    pseudonymization key) and every file's sha256; return the manifest.

    Raises ArtifactError naming the first problem found.
    """
    return _verify(Path(path), _resolve_key(key), strict=True)[0]


def _read_manifest(path: Path) -> tuple[dict, bytes]:
    _recover(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: no run folder here")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise ArtifactError(f"{path}: not a shopml run (manifest.json is missing)")
    body = mpath.read_bytes()
    try:
        manifest = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{mpath}: corrupted manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != RUN_FORMAT:
        raise ArtifactError(f"{mpath}: not a shopml run manifest")
    if manifest.get("version") != RUN_VERSION:
        raise ArtifactError(f"{mpath}: unsupported run version {manifest.get('version')!r}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not isinstance(manifest.get("components"), list):
        raise ArtifactError(f"{mpath}: manifest lacks its file list or components")
    root = path.resolve()
    for rel in files:
        if root not in (path / rel).resolve().parents:
            raise ArtifactError(f"{mpath}: file entry {rel!r} points outside the run")
    return manifest, body


def _verify(path: Path, key: bytes, *, strict: bool) -> tuple[dict, bytes, bool]:
    """(manifest, its bytes, signature checked). ``strict=False`` lets a run made under
    another key through unsigned-checked, for JSON-only reads (the report)."""
    from shopml.privacy import key_fingerprint

    manifest, body = _read_manifest(path)
    verified = manifest.get("key_fingerprint") == key_fingerprint(key)
    if verified:
        _check_signature(path, body, key)
    elif strict:
        raise ArtifactError(
            f"{path}: the run was made with another pseudonymization key "
            f"(fingerprint {manifest.get('key_fingerprint')}); set SHOPML_KEY/SHOPML_KEY_FILE to it"
        )
    else:
        log.warning("%s: made under another key; its signature cannot be checked (read as JSON only)", path)
    files = manifest["files"]
    for rel, digest in files.items():
        p = path / rel
        if not p.is_file():
            raise ArtifactError(f"{path}: {rel} is missing")
        if _sha256(p) != digest:
            raise ArtifactError(f"{path}: {rel} does not match its sha256 in the manifest (corrupted?)")
    for c in manifest["components"]:
        if not isinstance(c, dict) or f"{c.get('path')}/model.json" not in files:
            raise ArtifactError(f"{path / MANIFEST}: component {c!r:.60} has no model.json listed")
    return manifest, body, verified


# ---------------------------------------------------------------------- component registry
# shopml's own estimators, by the class path a manifest records. A manifest can only
# choose among these and the classes given to register_component: never an import path.
_BUILTIN = {
    f"shopml.{mod}.{cls}": f"shopml.{mod}"
    for mod, names in {
        "recommend.models": ["SASRecRecommender", "CaserRecommender"],
        "recommend.baselines": ["MostPopular", "ItemKNN", "Markov", "Repurchase"],
        "sessions.estimator": ["SessionRecommender"],
        "sessions.baselines": ["PopularityRecommender", "MarkovRecommender", "VSKNNRecommender"],
        "intent.estimator": ["PurchaseIntentModel"],
        "intent.tabular": ["IntentClassifier"],
        "customers.estimator": ["CustomerForecaster"],
        "pricing.demand": ["NeuralDemand"],
        "pricing.price_book": ["PriceBook"],
    }.items()
    for cls in names
}
# Where runs saved before a move name their classes: old module path -> the module now.
_MOVED = {
    "behaviour.sessions": "sessions.estimator",
    "behaviour.knn": "sessions.baselines",
    "behaviour.session_intent": "intent.estimator",
    "behaviour.tabular": "intent.tabular",
    "behaviour.customers": "customers.estimator",
    "service.price_book": "pricing.price_book",
}
_BUILTIN.update({
    path.replace(f"shopml.{new}.", f"shopml.{old}."): module
    for old, new in _MOVED.items()
    for path, module in list(_BUILTIN.items()) if module == f"shopml.{new}"
})
_REGISTERED: dict[str, type] = {}


def register_component(cls: type) -> type:
    """Allow an estimator class (with ``save(path)`` and classmethod ``load(path)``) in run
    folders; usable as a class decorator. Registration is the only way a class other than
    shopml's own estimators can be saved in, or loaded from, a run.

    >>> @register_component
    ... class Constant:
    ...     def save(self, path): ...
    ...     @classmethod
    ...     def load(cls, path): return cls()
    >>> _component_class(f"{Constant.__module__}.{Constant.__qualname__}") is Constant
    True
    """
    if not (callable(getattr(cls, "save", None)) and callable(getattr(cls, "load", None))):
        raise ConfigError(f"{cls.__qualname__}: a run component needs save(path) and load(path)")
    _REGISTERED[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


def _component_class(cls_path: str) -> type | None:
    """The registered class recorded as ``cls_path``, or None when it is not registered."""
    if cls_path in _REGISTERED:
        return _REGISTERED[cls_path]
    module = _BUILTIN.get(cls_path)
    if module is None:
        return None
    cls = getattr(importlib.import_module(module), cls_path.rpartition(".")[2], None)
    return cls if isinstance(cls, type) and callable(getattr(cls, "load", None)) else None


def _load_component(path: Path, entry: dict):
    cls = _component_class(str(entry.get("class", "")))
    if cls is None:
        raise ArtifactError(f"{path}: component {entry.get('name')!r} names {str(entry.get('class'))[:80]!r}, "
                            "which is not a registered shopml component class")
    return cls.load(path / entry["path"])


def load_run(path, *, components: bool = True, check_key: bool = False, key: bytes | None = None) -> Run:
    """Load a run folder after verifying it (see :func:`verify_run`); no pickle anywhere.

    ``key`` defaults to the current pseudonymization key. Loading components needs the
    run's own key (the signature must verify): a run made with another key is refused,
    since neither its signature nor its user pseudonyms can match. ``components=False``
    (JSON only, e.g. for the report) reads such a run with ``Run.verified`` False.
    ``check_key=True`` makes even that refuse a run made with another key.
    """
    path = Path(path)
    manifest, body, verified = _verify(path, _resolve_key(key), strict=components or check_key)
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
    return Run(path=path, manifest=manifest, components=loaded, extras=extras, items=items,
               fingerprint=hashlib.sha256(body).hexdigest()[:16], verified=verified)
