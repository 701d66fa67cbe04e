"""`shopml validate`: exit 0 with a report on each raw fixture; exit 2 with one line (file,
line, problem, no traceback) on corrupted copies made here."""

import json
import os
import subprocess
import sys

import pytest

from shopml.cli import main

FIXTURES = [
    ("taobao", ("taobao-head", "UserBehavior_head4321.csv"), 4321),
    ("otto", ("otto", "train_20sessions.jsonl"), 862),
    ("yoochoose-clicks", ("yoochoose-clicks-100k", "yoochoose-clicks-100k_test.txt"), 13568),
    ("diginetica-views", ("diginetica-views-sample", "sample_train-item-views.csv"), 12391),
]


def run(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("fmt, parts, n_events", FIXTURES)
def test_fixture_validates_with_report(real_file, capsys, fmt, parts, n_events):
    path = real_file("fixtures", *parts)
    code, out, err = run(["validate", str(path), "--format", fmt], capsys)
    assert code == 0, err
    assert "events by type" in out and "sparsity" in out and f"{n_events:,}" in out
    code, out, _ = run(["validate", str(path), "--format", fmt, "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["valid"] and report["events"] == n_events
    assert sum(report["events_by_type"].values()) == n_events


def taobao_lines(real_file):
    return real_file("fixtures", "taobao-head", "UserBehavior_head4321.csv").read_text().splitlines()


def corrupt(kind, real_file, tmp_path):
    """A corrupted copy of a fixture: (path, format, expected line, words in the message)."""
    lines = taobao_lines(real_file)
    p = tmp_path / f"{kind}.csv"
    if kind == "truncated":
        lines[41] = ",".join(lines[41].split(",")[:3])
        p.write_text("\n".join(lines) + "\n")
        return p, "taobao", 42, "truncated line"
    if kind == "bad-timestamp":
        lines[99] = lines[99].rsplit(",", 1)[0] + ",2017-13-99"
        p.write_text("\n".join(lines) + "\n")
        return p, "taobao", 100, "unparsable timestamp"
    if kind == "negative-price":
        rows = [line.split(",") for line in lines[:200]]
        body = [f"{u},{i},{ts},{b},{-5 if k == 150 else 9.99}" for k, (u, i, c, b, ts) in enumerate(rows)]
        p.write_text("user_id,item_id,timestamp,event_type,price\n" + "\n".join(body) + "\n")
        return p, "events", 152, "negative price"
    if kind == "missing-column":
        src = real_file("fixtures", "diginetica-views-sample", "sample_train-item-views.csv").read_text()
        cut = [";".join(f for k, f in enumerate(r.split(";")) if k != 2) for r in src.splitlines()]
        p.write_text("\n".join(cut) + "\n")
        return p, "diginetica-views", 1, "item_id"
    if kind == "empty":
        p.write_bytes(b"")
        return p, "taobao", 1, "empty"
    if kind == "random-bytes":
        p.write_bytes(os.urandom(4096))
        return p, "taobao", None, "UTF-8"
    if kind == "utf16":
        p.write_bytes("\n".join(lines).encode("utf-16"))
        return p, "taobao", 1, "UTF-16"
    raise AssertionError(kind)


KINDS = ["truncated", "bad-timestamp", "missing-column", "empty", "random-bytes", "utf16"]


@pytest.mark.parametrize("kind", KINDS)
def test_corrupted_copy_exits_2_with_one_line(real_file, tmp_path, capsys, kind):
    path, fmt, line, words = corrupt(kind, real_file, tmp_path)
    code, out, err = run(["validate", str(path), "--format", fmt], capsys)
    assert code == 2
    msg = err.strip()
    assert "\n" not in msg and "Traceback" not in err and out == ""
    assert str(path) in msg and words in msg
    if line is not None:
        assert f"row {line}" in msg
    else:
        assert "row " in msg


def test_negative_price_is_dropped_and_counted(real_file, tmp_path, capsys):
    # bad_prices="drop" is the default: the run goes on and the report names the first line
    path, fmt, line, _ = corrupt("negative-price", real_file, tmp_path)
    code, out, err = run(["validate", str(path), "--format", fmt, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    bad = [w for w in report["warnings"] if w["kind"] == "bad_prices"]
    assert [(w["count"], w["first_row"]) for w in bad] == [(1, line)]
    assert report["events"] == 199 and report["excluded"]["bad_prices"] == 1


@pytest.mark.parametrize("kind", ["random-bytes", "truncated"])
def test_real_process_prints_no_traceback(real_file, tmp_path, kind):
    path, fmt, _, words = corrupt(kind, real_file, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "shopml", "validate", str(path), "--format", fmt],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert words in proc.stderr


def test_maps_from_the_command_line(tmp_path, capsys):
    p = tmp_path / "f.csv"
    p.write_text("who,what,when,act\na,x,1700000000,seen\na,y,1700000100,pv\n")
    argv = ["validate", str(p), "--map", "who=user_id,what=item_id", "--map", "when=timestamp",
            "--map", "act=event_type", "--json"]
    code, _, err = run(argv, capsys)
    assert code == 2 and "unknown event type 'seen'" in err
    code, out, _ = run(argv + ["--event-map", "seen=view"], capsys)
    assert code == 0 and json.loads(out)["events_by_type"]["view"] == 2


def test_benchmark_ingest_smoke(tmp_path, capsys):
    out = tmp_path / "ingest.json"
    code, stdout, err = run(["benchmark", "ingest", "--events", "3000", "--out", str(out)], capsys)
    assert code == 0, err
    doc = json.loads(out.read_text())
    rows = {r["model"]: r for r in doc["rows"]}
    ingest = rows["ingest+validate (parquet)"]
    assert ingest["events"] == 3000 and ingest["events_per_second"] > 0 and ingest["peak_rss_mb"] > 0
    assert rows["build_sequences"]["users"] > 0
    assert out.with_suffix(".md").exists() and "events_per_second" in stdout
