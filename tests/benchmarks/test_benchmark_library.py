"""shopml.benchmarks: the functions behind ``shopml benchmark`` return the rows the committed
results have, without Typer; the commands refuse bad paths and options before any work."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from shopml.benchmarks import BenchmarkResult
from shopml.cli import main
from shopml.errors import ConfigError

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def _committed_keys(name: str) -> set[str]:
    """Row keys of a committed result file (skip when the file is not in this checkout)."""
    path = RESULTS / name
    if not path.is_file():
        pytest.skip(f"{path} not in this checkout")
    return set(json.loads(path.read_text())["rows"][0])


@pytest.fixture()
def beauty_like(tmp_path):
    rng = np.random.default_rng(0)
    lines = [" ".join([str(u + 1)] + [str((s + j) % 20 + 1) for j in range(int(rng.integers(3, 8)))])
             for u in range(60) for s in [int(rng.integers(1, 20))]]
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_recommend_rows_and_checkpoints(beauty_like, caplog):
    from shopml.benchmarks.recommend import run_recommend

    seen = []
    with caplog.at_level(logging.INFO, logger="shopml.benchmarks"):
        res = run_recommend(beauty_like, ["pop", "markov"], rows=[{"model": "kept"}],
                            on_model=lambda r: seen.append(len(r.rows)))
    assert isinstance(res, BenchmarkResult) and res.dataset == "tiny.txt"
    assert [(r["model"], r.get("protocol")) for r in res.rows] == [("kept", None), ("pop", "A"), ("pop", "B"),
                                                                   ("markov", "A"), ("markov", "B")]
    assert seen == [3, 5]  # after each model, so a long run keeps what it has finished
    assert _committed_keys("recommend.json") <= set(res.rows[1])
    assert "markov" in caplog.text
    assert res.rows[3]["hr@10"] == 1.0  # successors are deterministic (i -> i+1)


def test_kept_rows_drops_the_models_being_rerun(tmp_path):
    from shopml.benchmarks.recommend import kept_rows

    out = tmp_path / "r.json"
    assert kept_rows(out, ["pop"]) == []
    out.write_text(json.dumps({"rows": [{"model": "pop"}, {"model": "sasrec"}]}))
    assert kept_rows(out, ["pop"]) == [{"model": "sasrec"}]


def test_memory_row_has_the_committed_keys():
    from shopml.benchmarks.recommend import run_memory

    res = run_memory(500, 20)
    assert res.rows[0]["model"] == "sasrec (untrained)" and res.rows[0]["n_items"] == 500
    assert _committed_keys("recommend.memory.json") <= set(res.rows[0])


def test_sessions_rows(tmp_path):
    from shopml.benchmarks.sessions import run_sessions

    train, test = tmp_path / "train.txt", tmp_path / "test.tsv"
    train.write_text("\n".join(["1 2 3", "1 2", "2 3 4", "4 5 1", "1 2 3 4"] * 10) + "\n")
    test.write_text("1\t2\n1 2\t3\n9999\t1\n4\t5\n")
    res = run_sessions(train, test, ["markov", "pop"], intent=False)
    assert [r["model"] for r in res.rows] == ["markov", "pop"]
    assert _committed_keys("sessions.json") - {"epochs"} <= set(res.rows[0])  # epochs: GRU4Rec only
    assert res.extra["n_test"] == 4 and res.extra["gru4rec_params"] is None


@pytest.mark.parametrize(("module", "names"), [("recommend", ["pop", "gru"]), ("sessions", ["vsknn", "sasrec"])])
def test_unknown_model_is_refused_before_reading(module, names, tmp_path):
    import importlib

    check = importlib.import_module(f"shopml.benchmarks.{module}").check_models
    with pytest.raises(ConfigError, match=repr(names[1])):
        check(names)


def test_library_imports_no_cli():
    """The benchmark modules run without Typer and Rich (e.g. in the ingest child processes)."""
    import subprocess
    import sys

    code = ("import sys, shopml.benchmarks.recommend, shopml.benchmarks.sessions, shopml.benchmarks.customers, "
            "shopml.benchmarks.intent, shopml.benchmarks.pricing, shopml.benchmarks.ingest, shopml.benchmarks.fit; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click') "
            "or m.startswith('shopml.cli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _exit(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    err = capsys.readouterr().err
    return e.value.code, err


@pytest.mark.parametrize("argv", [
    ["recommend", "--data", "{missing}", "--out", "{out}"],
    ["sessions", "--train", "{missing}", "--test", "{missing}", "--out", "{out}"],
    ["customers", "--data", "{missing}", "--out", "{out}"],
    ["intent", "--data", "{missing}", "--out", "{out}"],
    ["pricing", "--data", "{missing}", "--out", "{out}"],
])
def test_missing_input_is_one_line_exit_2(argv, tmp_path, capsys):
    argv = [a.format(missing=tmp_path / "nope.txt", out=tmp_path / "r.json") for a in argv]
    code, err = _exit(capsys, "benchmark", *argv)
    assert code == 2 and err.strip() == f"error: {tmp_path / 'nope.txt'}: file not found"
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("argv", [
    ["recommend", "--data", "{data}", "--out", "{out}"],
    ["recommend-memory", "--items", "100", "--out", "{out}"],
    ["customers", "--data", "{data}", "--out", "{out}"],
    ["pricing-sim", "--out", "{out}"],
    ["ingest", "--events", "100", "--out", "{out}"],
])
def test_out_that_is_a_folder_is_refused_first(argv, beauty_like, tmp_path, capsys):
    folder = tmp_path / "r.json"
    folder.mkdir()
    code, err = _exit(capsys, "benchmark", *[a.format(data=beauty_like, out=folder) for a in argv])
    assert code == 2 and "is a folder" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["recommend", "--models", "pop,nope"], "unknown model 'nope'"),
    (["customers", "--n-models", "0"], "--n-members must be at least 1"),
    (["intent", "--folds", "1"], "--folds must be at least 2"),
])
def test_bad_options_are_refused_before_reading(argv, message, beauty_like, tmp_path, capsys):
    code, err = _exit(capsys, "benchmark", argv[0], "--data", str(beauty_like), "--out", str(tmp_path / "r.json"),
                      *argv[1:])
    assert code == 2 and message in err and not (tmp_path / "r.json").exists()
