"""Where a model folder or a benchmark file may be written: never over a user's file, never
over an input, and refused before any training starts (one line, exit 2)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from shopml.artifacts import write_model_dir
from shopml.cli import main
from shopml.cli._common import write_benchmark
from shopml.errors import ConfigError
from shopml.targets import check_benchmark_target, check_model_target, check_new_file


def _snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _code(argv, capsys) -> tuple[int, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def test_model_target_accepts_new_empty_and_earlier_model_folders(tmp_path):
    assert check_model_target(tmp_path / "a" / "m") == tmp_path / "a" / "m"
    (tmp_path / "empty").mkdir()
    assert check_model_target(tmp_path / "empty") == tmp_path / "empty"
    write_model_dir(tmp_path / "m", kind="x", params={}, tensors={"w": np.zeros(2)})
    assert check_model_target(tmp_path / "m") == tmp_path / "m"


@pytest.mark.parametrize("make, target, fragment", [
    (lambda d: (d / "docs").mkdir() or (d / "docs" / "cv.txt").write_text("mine"), "docs", "neither an empty"),
    (lambda d: (d / "docs").write_text("a file"), "docs", "existing file"),
    (lambda d: (d / "elsewhere").mkdir() or os.symlink(d / "elsewhere", d / "docs"), "docs", "symbolic link"),
    (lambda d: None, "data.txt", "is the input"),
    (lambda d: None, ".", "is or contains the current directory"),
])
def test_model_target_refuses_and_leaves_everything_alone(tmp_path, monkeypatch, make, target, fragment):
    (tmp_path / "data.txt").write_text("1 2\n")
    make(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match=fragment):
        check_model_target(tmp_path / target if target != "." else tmp_path, inputs=[tmp_path / "data.txt"])
    assert _snapshot(tmp_path) == before


def test_benchmark_target_rewrites_its_own_files_only(tmp_path):
    out = tmp_path / "res.json"
    assert check_benchmark_target(out) == out
    write_benchmark(out, "toy", [{"model": "a", "x": 1.0}])
    assert check_benchmark_target(out) == out  # a re-run replaces what shopml wrote
    legacy = tmp_path / "old.json"  # a twin written before the mark existed: recognised by its title
    legacy.write_text(json.dumps({"dataset": "toy", "rows": []}))
    legacy.with_suffix(".md").write_text("# toy\n\n| model |\n")
    assert check_benchmark_target(legacy) == legacy


@pytest.mark.parametrize("make, out, fragment", [
    (lambda d: (d / "README.md").write_text("# my project\n"), "README.json", "Markdown twin"),
    (lambda d: (d / "notes.json").write_text('{"mine": 1}'), "notes.json", "shopml did not write"),
    (lambda d: (d / "t.json").write_text('{"dataset": "x", "rows": []}') and (d / "t.md").write_text("# y\n"),
     "t.json", "Markdown twin"),
    (lambda d: (d / "r.json").mkdir(), "r.json", "is a folder"),
    (lambda d: None, "results.csv", "writes a .json file"),
    (lambda d: None, "data.json", "is an input"),
])
def test_benchmark_target_refuses_a_users_file(tmp_path, make, out, fragment):
    (tmp_path / "data.json").write_text('{"dataset": "in", "rows": []}')
    make(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match=fragment):
        check_benchmark_target(tmp_path / out, inputs=[tmp_path / "data.json"])
    assert _snapshot(tmp_path) == before


def test_fit_commands_refuse_a_users_folder_before_training(tmp_path, capsys):
    data = tmp_path / "seqs.txt"
    data.write_text("".join(f"{u} {i}\n" for u in range(1, 30) for i in range(1, 6)))
    sessions = tmp_path / "sessions.txt"
    sessions.write_text("1 2 3\n2 3 4\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "thesis.txt").write_text("years of work")
    before = _snapshot(tmp_path)
    for argv in (["recommend", "fit", "--data", str(data), "--out", str(docs)],
                 ["sessions", "fit", "--train", str(sessions), "--out", str(docs)],
                 ["sessions", "fit", "--train", str(sessions), "--out", str(sessions)],
                 ["customers", "fit", str(data), "--out", str(docs)],
                 ["price", "fit", str(data), "--out", str(tmp_path)]):
        code, err = _code(argv, capsys)
        assert code == 2 and "Traceback" not in err and str(tmp_path) in err, (argv, err)
    assert _snapshot(tmp_path) == before


def test_benchmark_refuses_to_write_over_a_users_markdown(tmp_path, capsys):
    data = tmp_path / "seqs.txt"
    data.write_text("1 1\n1 2\n1 3\n")
    (tmp_path / "README.md").write_text("# my project\n")
    code, err = _code(["benchmark", "recommend", "--data", str(data), "--out", str(tmp_path / "README.json")], capsys)
    assert code == 2 and "README.md" in err
    assert (tmp_path / "README.md").read_text() == "# my project\n"


@pytest.mark.parametrize("make, name, fragment", [
    ("file", "events.parquet", "already exists"),
    ("dir", "events.parquet", "already exists"),
    ("link", "events.parquet", "already exists"),
    (None, "events.csv", ".parquet file path"),
])
def test_new_file_target_never_replaces_anything(tmp_path, make, name, fragment):
    target = tmp_path / name
    (tmp_path / "mine.parquet").write_text("the user's data")
    if make == "file":
        target.write_text("the user's data")
    elif make == "dir":
        target.mkdir()
    elif make == "link":
        target.symlink_to(tmp_path / "mine.parquet")
    before = _snapshot(tmp_path)
    with pytest.raises(ConfigError, match=fragment):
        check_new_file(target, suffix=".parquet")
    assert _snapshot(tmp_path) == before


def test_benchmark_ingest_keep_refuses_an_existing_file_before_generating(tmp_path, capsys):
    mine = tmp_path / "orders.parquet"
    mine.write_text("a user's export")
    code, err = _code(["benchmark", "ingest", "--events", "100", "--keep", str(mine)], capsys)
    assert code == 2 and "already exists" in err and "Traceback" not in err
    assert mine.read_text() == "a user's export"
