"""Where shopml may write: the checks every ``--out`` passes before any work starts.

A user's folders and files, and the command's own inputs, are never replaced. Each check
raises a one-line :class:`~shopml.errors.ConfigError` (exit 2 from the CLI) and runs
before training, so a bad path fails in a second rather than after an hour. The save
itself checks again (:class:`~shopml.artifacts.atomic_dir`), since the folder may change
while a model trains.

- :func:`check_folder_target`: a folder to write (a run, a model); which existing folders
  may be replaced is the caller's ``folder_problem``.
- :func:`check_model_target`: a model folder (``recommend fit``, ``sessions fit``, ...).
- :func:`check_benchmark_target`: a benchmark's JSON file and its Markdown twin.
- :func:`check_new_file`: a file shopml creates and the user keeps (``--keep``): it must
  not exist yet, since nothing marks it as shopml's.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "notes.md").write_text("mine") > 0
    True
    >>> try:
    ...     check_benchmark_target(d / "notes.json")
    ... except ConfigError as e:
    ...     print("refused:", "shopml did not write" in str(e))
    refused: True
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from shopml.errors import ConfigError

__all__ = ["check_folder_target", "check_model_target", "check_benchmark_target", "check_new_file",
           "BENCHMARK_MARK"]

_SYSTEM_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
# The last line of every benchmark Markdown twin: how a later run knows the file is its own.
BENCHMARK_MARK = "<!-- written by shopml benchmark -->"


def within(a: Path, b: Path) -> bool:
    """True when ``a`` is ``b`` or lies inside it (both resolved)."""
    return a == b or b in a.parents


def _cwd() -> Path:
    try:
        return Path.cwd().resolve()
    except OSError:  # the current directory was deleted: nothing to protect there
        return Path("/nonexistent-cwd")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_parent(given: Path) -> None:
    parent = _nearest_existing(given.parent)
    if not parent.is_dir():
        raise ConfigError(f"{given}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        what = "its folder" if parent == given.parent else "its nearest existing folder"
        raise ConfigError(f"{given}: {what} {parent} is not writable")


def _absolute(path, noun: str) -> tuple[Path, Path]:
    if path is None or str(path).strip() in ("", "."):
        raise ConfigError(f"{noun} {str(path)!r}: name a new {noun}, not the current folder")
    given = Path(os.path.abspath(Path(path).expanduser()))
    real = given.resolve()
    if any(within(real, root) for root in _SYSTEM_ROOTS):
        raise ConfigError(f"{given}: lies under a system folder (/proc, /sys, /dev)")
    return given, real


def check_folder_target(path, *, inputs: Iterable = (), noun: str = "folder",
                        folder_problem: Callable[[Path], str | None]) -> Path:
    """Refuse a folder path that a save could damage; return it made absolute.

    Refused: an empty path or '.', a path under /proc, /sys or /dev, the current
    directory or a folder holding it, a path that is, contains or lies inside one of
    ``inputs``, a symbolic link, an existing file, an existing folder for which
    ``folder_problem`` returns a reason, a parent that is a file, or a parent (or nearest
    existing ancestor) that is not writable."""
    given, real = _absolute(path, noun)
    if within(_cwd(), real):
        raise ConfigError(f"{given}: is or contains the current directory")
    for inp in inputs:
        if inp is None:
            continue
        r = Path(inp).expanduser().resolve()
        if real == r:
            raise ConfigError(f"{given}: is the input {inp}; write the {noun} to a new folder")
        if within(real, r) or within(r, real):
            raise ConfigError(f"{given}: {'lies inside' if within(real, r) else 'contains'} the input {inp}")
    if given.is_symlink():
        raise ConfigError(f"{given}: is a symbolic link; write the {noun} to a new folder")
    if given.exists():
        problem = "is an existing file" if not given.is_dir() else folder_problem(given)
        if problem:
            raise ConfigError(f"{given}: {problem}; write the {noun} to a new or empty folder")
    _check_parent(given)
    return given


def _model_folder_problem(path: Path) -> str | None:
    from shopml.artifacts import _is_model_folder

    return None if _is_model_folder(path) else "exists and is neither an empty folder nor a shopml model folder"


def check_model_target(path, *, inputs: Iterable = ()) -> Path:
    """A model folder may be written to a new path, an empty folder or an earlier model
    folder; everything else :func:`check_folder_target` refuses is refused.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "data.txt").write_text("1 2\\n") > 0
    True
    >>> check_model_target(d / "model", inputs=[d / "data.txt"]) == d / "model"
    True
    >>> try:
    ...     check_model_target(d, inputs=[d / "data.txt"])
    ... except ConfigError as e:
    ...     print("refused:", "contains the input" in str(e))
    refused: True
    """
    return check_folder_target(path, inputs=inputs, noun="model folder", folder_problem=_model_folder_problem)


def _is_benchmark_json(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("rows"), list) and "dataset" in doc


def _is_benchmark_md(path: Path, twin: Path) -> bool:
    """Ours: it ends with the mark, or (written before the mark existed) its title is the
    dataset named by the shopml benchmark JSON beside it."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    if text.rstrip().endswith(BENCHMARK_MARK):
        return True
    if not _is_benchmark_json(twin):
        return False
    return text.split("\n", 1)[0] == f"# {json.loads(twin.read_text())['dataset']}"


def check_benchmark_target(out, *, inputs: Iterable = ()) -> Path:
    """A benchmark writes ``out`` (a .json file) and its Markdown twin (``out`` with the
    suffix .md). Either may be new, or a file an earlier shopml benchmark wrote; refused
    are another suffix, a folder, a symbolic link, one of ``inputs``, any other existing
    file, and a parent that cannot be written."""
    given, _ = _absolute(out, "--out")
    if given.suffix.lower() != ".json":
        raise ConfigError(f"--out {out}: the benchmark writes a .json file (and a .md twin beside it)")
    twin = given.with_suffix(".md")
    ins = [Path(i).expanduser().resolve() for i in inputs if i is not None]
    for p in (given, twin):
        if p.is_symlink():
            raise ConfigError(f"--out {out}: {p} is a symbolic link; give a new .json file path")
        if p.is_dir():
            raise ConfigError(f"--out {out}: {p} is a folder; give a .json file path")
        if any(within(p.resolve(), r) for r in ins):
            raise ConfigError(f"--out {out}: {p} is an input of this command")
    if given.exists() and not _is_benchmark_json(given):
        raise ConfigError(f"--out {out}: {given} is an existing file shopml did not write; give a new path")
    if twin.exists() and not _is_benchmark_md(twin, given):
        raise ConfigError(f"--out {out}: its Markdown twin {twin} is an existing file shopml did not write; "
                          "give a new path")
    _check_parent(given)
    return given


def check_new_file(path, *, suffix: str) -> Path:
    """A new file the user keeps: its name ends in ``suffix``, nothing is there yet (a file,
    a folder or a link), and its folder can be written. Returns the absolute path.

    Example:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "events.parquet"
        >>> check_new_file(f, suffix=".parquet") == f
        True
        >>> _ = f.write_text("mine")
        >>> try:
        ...     check_new_file(f, suffix=".parquet")
        ... except ConfigError as e:
        ...     print("refused:", "already exists" in str(e))
        refused: True
    """
    given, _ = _absolute(path, "file")
    if given.suffix != suffix:
        raise ConfigError(f"{given}: give a {suffix} file path")
    if given.exists() or given.is_symlink():
        raise ConfigError(f"{given}: already exists; shopml does not overwrite it (choose a new name)")
    _check_parent(given)
    return given
