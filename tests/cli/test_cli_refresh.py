"""``shopml fit --warm-start`` and ``shopml benchmark refresh`` from the command line: a warm
run continues the previous one, the benchmark writes both modes, and bad flags exit 2."""

from __future__ import annotations

import json

import pytest

from shopml.cli import main
from shopml.data.simulate import simulate_shop


@pytest.fixture()
def log(tmp_path):
    path = tmp_path / "events.parquet"
    simulate_shop(n_users=200, n_items=40, seed=11).events.write_parquet(path)
    return path


def _run(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_fit_warm_start_writes_a_run_that_continues_the_previous(log, tmp_path, capsys):
    common = ["--events", str(log), "--preset", "tiny", "--jobs", "recommend", "--json"]
    code, _, err = _run(["fit", *common, "--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    code, out, err = _run(["fit", *common, "--out", str(tmp_path / "b"), "--warm-start", str(tmp_path / "a")], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert {r["mode"] for r in doc["metrics"]["recommend"]} == {"warm"}
    code, _, err = _run(["fit", *common, "--out", str(tmp_path / "c"), "--warm-start", str(tmp_path / "nope")],
                        capsys)
    assert code == 2 and "--warm-start" in err and len(err.strip().splitlines()) == 1


def test_benchmark_refresh_rows_for_both_modes(log, tmp_path, capsys):
    out = tmp_path / "refresh.json"
    code, _, err = _run(["benchmark", "refresh", "--events", str(log), "--split-at", "2024-02-01",
                         "--preset", "tiny", "--out", str(out)], capsys)
    assert code == 0, err
    doc = json.loads(out.read_text())
    rows = doc["rows"]
    assert {r["mode"] for r in rows} == {"full", "warm"} and {r["job"] for r in rows} == {"recommend", "customers"}
    warm_sasrec = [r for r in rows if r["mode"] == "warm" and r["model"] == "sasrec" and r["protocol"] == "A"]
    assert warm_sasrec and 0 <= warm_sasrec[0]["ndcg@10"] <= 1
    assert "train_seconds_share" in doc["sasrec"] and doc["split_at"].startswith("2024-02-01")
    assert (tmp_path / "refresh.md").is_file()


def test_benchmark_refresh_split_outside_the_log_exits_2(log, tmp_path, capsys):
    code, _, err = _run(["benchmark", "refresh", "--events", str(log), "--split-at", "2030-01-01",
                         "--preset", "tiny", "--out", str(tmp_path / "r.json")], capsys)
    assert code == 2 and "--split-at" in err and "Traceback" not in err
