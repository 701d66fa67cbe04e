"""``shopml fit`` on logs as they come (flags only), refusals before any work, usage errors
as one clean message with exit 2."""

from __future__ import annotations

import json

import polars as pl
import pytest

from shopml.cli import main
from shopml.data.simulate import simulate_shop

CATEGORIES = ["appliances.environment.water_heater", "electronics.smartphone", "furniture.living_room.sofa"]


def _rees46(tmp_path, n_users=120):
    """Simulator events written in the REES46 / Open CDP export layout."""
    ev = simulate_shop(n_users=n_users, n_items=40, seed=7).events
    codes = pl.Series([CATEGORIES[hash(i) % 3] for i in ev["item_id"].to_list()])
    out = ev.select(
        pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M:%S UTC").alias("event_time"),
        pl.col("event_type"), pl.col("item_id").alias("product_id"),
        pl.col("category").alias("category_id"), codes.alias("category_code"), pl.lit("acme").alias("brand"),
        pl.col("price"), pl.col("user_id"), pl.col("session_id").alias("user_session"))
    path = tmp_path / "2019-Oct.csv"
    out.write_csv(path)
    return path


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    cap = capsys.readouterr()
    return exc.value.code, cap.out, cap.err


def test_rees46_export_fits_with_map_flags_only(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SHOPML_KEY", "22" * 32)
    path = _rees46(tmp_path)
    out = tmp_path / "runs" / "rees"
    main(["fit", "--events", str(path), "--map", "event_time=timestamp", "--map", "product_id=item_id",
          "--map", "user_session=session_id,category_code=category", "--out", str(out), "--preset", "tiny",
          "--jobs", "recommend,sessions", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["metrics"]) == {"recommend", "sessions"}
    assert doc["winners"]["recommend"]["model"] and (out / "manifest.json").is_file()


def test_out_that_is_a_users_folder_is_refused_and_kept(tmp_path, capsys):
    path = _rees46(tmp_path, n_users=30)
    docs = tmp_path / "my_documents"
    docs.mkdir()
    (docs / "letter.txt").write_text("keep me")
    code, _, err = _run(["fit", "--events", str(path), "--map", "event_time=timestamp,product_id=item_id",
                         "--out", str(docs)], capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert (docs / "letter.txt").read_text() == "keep me" and sorted(p.name for p in docs.iterdir()) == ["letter.txt"]


def test_out_equal_to_the_input_is_refused(tmp_path, capsys):
    path = _rees46(tmp_path, n_users=30)
    before = path.read_bytes()
    code, _, err = _run(["fit", "--events", str(path), "--out", str(path)], capsys)
    assert code == 2 and path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing swapped aside


@pytest.mark.parametrize("argv", [
    [], ["nosuchcmd"], ["validate"], ["validate", "x.csv", "--bogus"], ["fit", "--events"],
    ["serve", "--run", ".", "--port", "abc"], ["serve", "--run", ".", "--port", "99999"],
    ["serve", "--run", ".", "--threads", "0"], ["serve", "--run", ".", "--log-level", "bogus"],
    ["fit", "--events", "e.csv", "--out", "r", "--preset", "huge"],
    ["validate", "x.csv", "--format", "nope"], ["validate", "x.csv", "--missing-user", "maybe"],
])
def test_usage_errors_exit_2_without_a_traceback(argv, capsys):
    code, _, err = _run(argv, capsys)
    assert code == 2 and "Traceback" not in err
    assert "error" in err.lower()


@pytest.mark.parametrize("flags, message", [
    (["--jobs", "recommend,nope"], "unknown job"),
    (["--test-from", "August"], "--test-from"),
    (["--max-minutes", "-1"], "--max-minutes"),
    (["--table", "t"], "--table"),
])
def test_bad_fit_options_are_refused_before_reading(tmp_path, capsys, flags, message):
    path = tmp_path / "events.csv"
    path.write_text("not even read\n")
    code, _, err = _run(["fit", "--events", str(path), "--out", str(tmp_path / "run"), *flags], capsys)
    assert code == 2 and message in err and not (tmp_path / "run").exists()


def test_version_flag(capsys):
    main(["--version"])
    assert capsys.readouterr().out.startswith("shopml ")


def test_the_table_marks_the_served_model_when_it_is_not_the_validation_winner(capsys):
    from types import SimpleNamespace

    from shopml.cli.fit import print_fit

    rows = [{"model": "neural", "wape": 0.58, "winner": False, "served": True},
            {"model": "loglinear", "wape": 1.82, "winner": True, "served": False}]
    res = SimpleNamespace(metrics={"pricing": rows}, skipped=[],
                          winners={"pricing": {"model": "loglinear", "served": "neural", "metric": "wape", "valid": 0.65}})
    print_fit(res)
    lines = {line.split("|")[1].strip(): line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    assert lines["neural"].rstrip(" |").endswith("yes") and not lines["loglinear"].rstrip(" |").endswith("yes")
