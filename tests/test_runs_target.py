"""Where a run may be written: never over a user's files, never over an input, and
replacing a run keeps the previous one until the new one is complete."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopml.artifacts import atomic_dir, read_model_dir, write_model_dir
from shopml.errors import ConfigError
from shopml.runs import check_run_target, load_run, save_run


def _run(path, value=1.0):
    return save_run(path, components={}, metrics={"v": value})


def _snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_new_empty_and_previous_run_are_accepted(tmp_path):
    assert check_run_target(tmp_path / "a" / "b") == tmp_path / "a" / "b"  # parents are created later
    (tmp_path / "empty").mkdir()
    assert load_run(_run(tmp_path / "empty")).metrics == {"v": 1.0}
    _run(tmp_path / "empty", 2.0)  # an earlier run (with its report) is replaced
    (tmp_path / "empty" / "report.html").write_text("<html>")
    _run(tmp_path / "empty", 3.0)
    assert load_run(tmp_path / "empty").metrics == {"v": 3.0}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("make, fragment", [
    (lambda d: (d / "docs").mkdir() or (d / "docs" / "thesis.txt").write_text("years of work"), "neither an empty"),
    (lambda d: (d / "docs").write_text("a plain file"), "existing file"),
    (lambda d: os.symlink(d, d / "docs"), "symbolic link"),
])
def test_users_files_are_refused_and_survive(tmp_path, make, fragment):
    make(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match=fragment):
        check_run_target(tmp_path / "docs")
    with pytest.raises(ConfigError, match=fragment):
        _run(tmp_path / "docs")
    assert _snapshot(tmp_path) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".docs")]  # nothing swapped aside


def test_a_run_folder_holding_a_users_file_is_not_replaced(tmp_path):
    _run(tmp_path / "run")
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="'notes.txt', which is not part of the run"):
        _run(tmp_path / "run", 2.0)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("out, fragment", [
    ("events.csv", "is the input"),
    ("data", "is the input"),
    ("data/run", "lies inside the input"),
    ("", "contains the input"),
])
def test_inputs_are_protected(tmp_path, monkeypatch, out, fragment):
    (tmp_path / "events.csv").write_text("user_id,item_id\n")
    (tmp_path / "data").mkdir()
    monkeypatch.chdir("/")  # the current-directory rule is tested on its own
    with pytest.raises(ConfigError, match=fragment):
        check_run_target(tmp_path / out, inputs=[tmp_path / "events.csv", tmp_path / "data"])


@pytest.mark.parametrize("out", ["", ".", "/proc/shopml-run", "/sys/run", "/dev/shm/run"])
def test_unsafe_names_are_refused(out):
    with pytest.raises(ConfigError):
        check_run_target(out)


def test_current_directory_and_its_ancestors_are_refused(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    for out in [tmp_path / "here", tmp_path]:
        with pytest.raises(ConfigError, match="current directory"):
            check_run_target(out)


def test_parent_that_is_a_file_or_not_writable(tmp_path, monkeypatch):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_run_target(tmp_path / "f" / "run")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        check_run_target(tmp_path / "f" / "deeper" / "run")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access  # tests run as root here, where chmod does not deny access
    monkeypatch.setattr(os, "access", lambda p, mode: real_access(p, mode) and os.fspath(p) != str(locked))
    with pytest.raises(ConfigError, match="its folder .* is not writable"):
        check_run_target(locked / "run")
    with pytest.raises(ConfigError, match="nearest existing folder .* is not writable"):
        check_run_target(locked / "new" / "run")


def test_message_is_one_line(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    with pytest.raises(ConfigError) as e:
        check_run_target(tmp_path / "docs")
    assert "\n" not in str(e.value) and str(tmp_path / "docs") in str(e.value)


_names = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="._-"), min_size=1, max_size=12)


@given(files=st.dictionaries(_names.filter(lambda n: n not in (".", "..")), st.binary(max_size=64),
                             min_size=1, max_size=5))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_folder_of_other_files_is_ever_replaced(tmp_path, files):
    d = tmp_path / uuid.uuid4().hex
    d.mkdir()
    for name, data in files.items():
        (d / name).write_bytes(data)
    before = _snapshot(d)
    with pytest.raises(ConfigError):
        _run(d)
    with pytest.raises(ConfigError):
        write_model_dir(d, kind="w", params={}, tensors={"w": np.ones(1)})
    with pytest.raises(ConfigError):
        with atomic_dir(d):
            pass
    assert _snapshot(d) == before


def test_model_save_does_not_replace_a_run_or_a_file(tmp_path):
    _run(tmp_path / "run")
    with pytest.raises(ConfigError):
        write_model_dir(tmp_path / "run", kind="w", params={}, tensors={"w": np.ones(1)})
    assert load_run(tmp_path / "run").metrics == {"v": 1.0}
    write_model_dir(tmp_path / "m", kind="w", params={"v": 1}, tensors={"w": np.ones(1)})
    write_model_dir(tmp_path / "m", kind="w", params={"v": 2}, tensors={"w": np.ones(1)})  # a model: replaced
    assert read_model_dir(tmp_path / "m").params == {"v": 2}


def _leftover(tmp_path, kind, pid=None):
    middle = f"{pid}.{uuid.uuid4().hex}" if pid else uuid.uuid4().hex
    return tmp_path / f".run.{middle}.{kind}"


def test_next_save_recovers_the_newest_old_run_then_cleans_leftovers(tmp_path):
    _run(tmp_path / "run", 1.0)
    old = _leftover(tmp_path, "old")
    os.rename(tmp_path / "run", old)  # a crash between the two renames of a save
    dead_tmp = _leftover(tmp_path, "tmp", pid=2**22 + 12345)  # beyond pid_max: no such process
    dead_tmp.mkdir()
    live_tmp = _leftover(tmp_path, "tmp", pid=os.getpid())  # a save still being written
    live_tmp.mkdir()
    check_run_target(tmp_path / "run")
    _run(tmp_path / "run", 2.0)
    assert load_run(tmp_path / "run").metrics == {"v": 2.0}
    assert not old.exists() and not dead_tmp.exists() and live_tmp.exists()


def test_recovered_old_run_is_what_a_reader_sees(tmp_path):
    _run(tmp_path / "run", 1.0)
    os.rename(tmp_path / "run", _leftover(tmp_path, "old"))
    assert load_run(tmp_path / "run").metrics == {"v": 1.0}
