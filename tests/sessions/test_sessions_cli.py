"""`shopml sessions fit|evaluate|predict` and `shopml benchmark sessions` on tiny files."""

from __future__ import annotations

import json

import pytest

from shopml.cli import main


def _files(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text("\n".join(["1 2 3", "1 2", "2 3 4", "4 5 1", "1 2 3 4"] * 10) + "\n")
    test = tmp_path / "test.tsv"
    test.write_text("1\t2\n1 2\t3\n9999\t1\n4\t5\n")
    return train, test


def _run(capsys, *argv):
    """Exit code (0 on normal return), stdout, stderr of ``shopml *argv``."""
    code = 0
    try:
        main(list(argv))
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fit_evaluate_predict_json(tmp_path, capsys):
    train, test = _files(tmp_path)
    code, _, _ = _run(capsys, "sessions", "fit", "--train", str(train), "--out", str(tmp_path / "m"), "--model", "markov", "--json")
    assert code == 0
    code, out, _ = _run(capsys, "sessions", "evaluate", "--model", str(tmp_path / "m"), "--test", str(test), "--json")
    res = json.loads(out)
    # By hand: 1 -> 2, 2 -> 3 and 4 -> 5 are the only transitions out of 1, 2 and 4 in the
    # training file, so three targets rank 1; the unknown session falls back to popularity, where the
    # target 1 ties item 2 (40 clicks each) and ties rank pessimistically: rank 2.
    assert res["n_cases"] == 4 and res["hr@20"] == 1.0
    assert res["mrr@20"] == pytest.approx((1 + 1 + 1 / 2 + 1) / 4)
    code, out, _ = _run(capsys, "sessions", "predict", "--model", str(tmp_path / "m"), "--session", "1", "--session", "", "--k", "2", "--json")
    recs = json.loads(out)
    assert recs[0]["items"][0] == "2" and recs[0]["fallback"] is None
    assert recs[1]["fallback"] == "popularity"


def test_malformed_file_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\n4 oops\n")
    code, out, err = _run(capsys, "sessions", "fit", "--train", str(bad), "--out", str(tmp_path / "m"))
    assert code == 2 and "bad.txt" in err and "row 2" in err and len(err.strip().splitlines()) == 1


def test_benchmark_rows(tmp_path, capsys):
    train, test = _files(tmp_path)
    out = tmp_path / "b.json"
    code, _, _ = _run(capsys, "benchmark", "sessions", "--train", str(train), "--test", str(test), "--out", str(out),
                      "--models", "vsknn,markov,pop", "--no-intent")  # fmt: skip
    doc = json.loads(out.read_text())
    assert [r["model"] for r in doc["rows"]] == ["vsknn", "markov", "pop"]
    assert all({"hr@20", "mrr@20", "train_seconds", "eval_seconds", "peak_rss_mb"} <= set(r) for r in doc["rows"])
    assert out.with_suffix(".md").exists()


def test_fit_gru4rec_with_item_features(tmp_path, capsys):
    train, _ = _files(tmp_path)
    feats = tmp_path / "items.json"
    feats.write_text(json.dumps({"1": ["a"], "2": ["a"], "3": ["b"], "4": ["b"]}))
    code, out, _ = _run(capsys, "sessions", "fit", "--train", str(train), "--out", str(tmp_path / "m"),
                        "--epochs", "1", "--dim", "8", "--item-features", str(feats), "--json")
    assert code == 0
    assert json.loads(out)["item_features"] == "2 tokens, 80% of the items"  # item 5 has none
    from shopml.sessions.estimator import SessionRecommender

    assert SessionRecommender.load(tmp_path / "m").net_.features is not None


def test_missing_item_features_file_stops_before_any_work(tmp_path, capsys):
    train, _ = _files(tmp_path)
    code, _, err = _run(capsys, "sessions", "fit", "--train", str(train), "--out", str(tmp_path / "m"),
                        "--item-features", str(tmp_path / "nope.json"))
    assert code == 2 and "nope.json" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()
