"""`shopml recommend fit|evaluate|predict` and `shopml benchmark recommend` on a tiny file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shopml.cli import main


@pytest.fixture()
def beauty_like(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for u in range(80):
        start = int(rng.integers(1, 20))
        lines.append(" ".join([str(u + 1)] + [str((start + j) % 20 + 1) for j in range(int(rng.integers(3, 8)))]))
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    return e.value.code, capsys.readouterr()


def test_fit_evaluate_predict_json(beauty_like, tmp_path, capsys):
    model = tmp_path / "m"
    main(["recommend", "fit", "--data", str(beauty_like), "--model", "markov", "--out", str(model), "--json"])
    assert json.loads(capsys.readouterr().out)["model"] == "markov"
    main(["recommend", "evaluate", "--model", str(model), "--data", str(beauty_like), "--json"])
    res = json.loads(capsys.readouterr().out)
    assert res["A"]["hr@10"] > 0.9  # successors are deterministic (i -> i+1) in this file
    main(["recommend", "predict", "--model", str(model), "--items", "3,4,nope", "--k", "2", "--explain", "--json"])
    recs = json.loads(capsys.readouterr().out)["recommendations"]
    assert recs[0]["item_id"] == "5" and recs[0]["because"][0]["item_id"] == "4"


def test_bad_input_is_one_line_exit_2(beauty_like, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("1\n")
    code, out = _run(capsys, "recommend", "fit", "--data", str(bad), "--model", "pop", "--out", str(tmp_path / "m"))
    assert code == 2 and out.err.count("\n") == 1 and "Traceback" not in out.err
    # The data file is real and valid, so exit 2 can only come from the model name.
    code, out = _run(capsys, "recommend", "fit", "--data", str(beauty_like), "--model", "nope",
                     "--out", str(tmp_path / "m"))
    assert code == 2 and out.err.count("\n") == 1
    assert "unknown model 'nope'" in out.err and "markov" in out.err
    assert not (tmp_path / "m").exists()


def test_benchmark_rows(beauty_like, tmp_path, capsys):
    out = tmp_path / "r.json"
    main(["benchmark", "recommend", "--data", str(beauty_like), "--out", str(out), "--models", "pop,markov,sasrec",
          "--epochs", "1"])
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["protocol"]) for r in rows] == [(m, p) for m in ("pop", "markov", "sasrec")
                                                           for p in ("A", "B")]
    for key in ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr@10", "epochs", "train_seconds", "seconds_per_epoch",
                "eval_seconds", "peak_rss_mb"):
        assert key in rows[0]
    assert out.with_suffix(".md").exists()


def test_predict_applies_the_shops_rules(beauty_like, tmp_path, capsys):
    model = tmp_path / "m"
    main(["recommend", "fit", "--data", str(beauty_like), "--model", "markov", "--out", str(model)])
    capsys.readouterr()
    main(["recommend", "predict", "--model", str(model), "--items", "3,4", "--k", "3", "--exclude", "5",
          "--pin", "17", "--boost", "12=100", "--json"])
    got = [r["item_id"] for r in json.loads(capsys.readouterr().out)["recommendations"]]
    assert got[:2] == ["17", "12"] and "5" not in got and len(got) == 3
    code, out = _run(capsys, "recommend", "predict", "--model", str(model), "--items", "3", "--boost", "12")
    assert code == 2 and "ITEM=NUMBER" in out.err and len(out.err.strip().splitlines()) == 1
    code, out = _run(capsys, "recommend", "predict", "--model", str(model), "--items", "3", "--new-slots", "-1")
    assert code == 2 and "new_slots" in out.err and len(out.err.strip().splitlines()) == 1


def test_predict_revenue_objective_and_its_bad_options(beauty_like, tmp_path, capsys):
    model = tmp_path / "m"
    main(["recommend", "fit", "--data", str(beauty_like), "--model", "pop", "--out", str(model)])
    capsys.readouterr()
    code, out = _run(capsys, "recommend", "predict", "--model", str(model), "--items", "3", "--objective", "margin")
    assert code == 2 and "--objective" in out.err
    main(["recommend", "predict", "--model", str(model), "--items", "3", "--objective", "profit",
          "--assumed-margin", "0.3", "--json"])
    res = json.loads(capsys.readouterr().out)
    assert res["assumed_margin"] == 0.3 and all("p_buy" in r for r in res["recommendations"])
    assert res["order"] == "relevance"
    p = [r["p_buy"] for r in res["recommendations"]]
    assert p == sorted(p, reverse=True)
    code, out = _run(capsys, "recommend", "predict", "--model", str(model), "--items", "3", "--objective", "profit",
                     "--order", "price")
    assert code == 2 and "--order" in out.err and len(out.err.strip().splitlines()) == 1


@pytest.fixture()
def tiny_features(tmp_path):
    path = tmp_path / "features.json"
    path.write_text(json.dumps({str(i): [i % 4, 10 + i % 3] for i in range(1, 21)}))
    return path


def test_benchmark_with_item_features_names_the_rows_and_reports_calibration(beauty_like, tiny_features, tmp_path,
                                                                             capsys):
    out = tmp_path / "b.json"
    main(["benchmark", "recommend", "--data", str(beauty_like), "--out", str(out), "--models", "sasrec,markov",
          "--epochs", "1", "--item-features", str(tiny_features)])
    doc = json.loads(out.read_text())
    assert [r["model"] for r in doc["rows"]] == ["sasrec-features"] * 2 + ["markov"] * 2
    assert doc["feature_tokens"] == 7 and doc["feature_coverage"] == 1.0
    row = doc["rows"][0]
    assert 0 <= row["ece@10"] <= 1 and 0 <= row["ece@10_raw"] <= 1 and row["temperature"] > 0


def test_benchmark_cold_start_rows(beauty_like, tiny_features, tmp_path, capsys):
    out = tmp_path / "c.json"
    main(["benchmark", "cold-start", "--data", str(beauty_like), "--item-features", str(tiny_features),
          "--new-items", "0.3", "--out", str(out), "--epochs", "1", "--models", "sasrec,category-pop,random"])
    doc = json.loads(out.read_text())
    assert [r["model"] for r in doc["rows"]] == ["sasrec-features", "sasrec-features + 2 new slots",
                                                "category-pop", "category-pop + 2 new slots", "random"]
    for r in doc["rows"]:
        assert 0 <= r["hr@10"] <= 1 and 0 <= r["new_item_share"] <= 1 and r["n_targets"] > 0
        assert 0 <= r["hr@10_old"] <= 1 and r["n_targets_old"] > 0
    for slots in (doc["rows"][1], doc["rows"][3]):
        assert slots["new_item_share"] >= 0.2  # two of ten slots held for new items (6 of them: always filled)
    assert doc["n_new_items"] == 6


@pytest.mark.parametrize("argv,msg", [
    (["--device", "cuda"], "no CUDA GPU"),
    (["--device", "tpu"], "device must be"),
    (["--item-features", "/no/such.json"], "not found"),
])
def test_benchmark_refuses_bad_devices_and_files(beauty_like, tmp_path, capsys, argv, msg):
    import torch

    if argv[1] == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, out = _run(capsys, "benchmark", "recommend", "--data", str(beauty_like), "--out", str(tmp_path / "b.json"),
                     *argv)
    assert code == 2 and msg in out.err and len(out.err.strip().splitlines()) == 1


def test_benchmark_cold_start_refuses_bad_shares(beauty_like, tiny_features, tmp_path, capsys):
    code, out = _run(capsys, "benchmark", "cold-start", "--data", str(beauty_like), "--item-features",
                     str(tiny_features), "--new-items", "1.5", "--out", str(tmp_path / "c.json"))
    assert code == 2 and "--new-items" in out.err
