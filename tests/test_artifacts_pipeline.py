"""fit_all end to end on a tiny simulated shop: every job it supports lands in one run with
its winner, skipped jobs say why, the run reloads and serves, and no raw user id is in any file."""

from __future__ import annotations

import polars as pl
import pytest

from shopml.data.simulate import simulate_shop
from shopml.pipeline import FitConfig, fit_all


def _pseudonymized(shop, key: bytes) -> pl.DataFrame:
    from shopml.privacy import pseudonymize

    return shop.events.with_columns(
        pl.Series("user_id", pseudonymize(shop.events["user_id"].to_list(), key=key)),
        pl.Series("session_id", pseudonymize(shop.events["session_id"].to_list(), key=key)),
    )


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory):
    import os

    key = bytes(range(32))
    os.environ["SHOPML_KEY"] = key.hex()  # module-scoped run: one key for all its tests
    shop = simulate_shop(n_users=150, n_items=40, seed=3)
    out = tmp_path_factory.mktemp("pipeline") / "run"
    res = fit_all(_pseudonymized(shop, key), out, config=FitConfig.preset("tiny"))
    yield shop, res, key
    os.environ.pop("SHOPML_KEY", None)


def test_every_job_ran_or_was_skipped_for_a_data_reason(shop_run):
    _, res, _ = shop_run
    assert {"recommend", "sessions", "customers"} <= set(res.metrics)
    assert set(res.seconds) == {"recommend", "sessions", "customers"}  # ran to the end: neither skipped nor failed
    models = {r["model"] for r in res.metrics["recommend"]}
    assert {"sasrec", "pop", "recent-pop", "markov", "itemknn", "rebuy"} <= models  # the model and baselines
    assert {r["protocol"] for r in res.metrics["recommend"]} == {"A", "B"}
    assert {r["model"] for r in res.metrics["customers"]} == {"rnn", "bgnbd"}
    assert {"intent-gru", "base-rate"} <= {r["model"] for r in res.metrics["sessions"]}
    skipped = {s["job"]: s for s in res.skipped}
    assert set(skipped) == {"pricing"} and skipped["pricing"]["status"] == "skipped"
    assert "prices vary" in skipped["pricing"]["reason"]  # the simulated shop keeps each item's price fixed


def test_customers_job_ran_and_saved_its_forecaster(shop_run):
    import math

    from shopml.runs import load_run

    _, res, key = shop_run
    assert "customers" not in {s["job"] for s in res.skipped}  # no "failed" (nor "skipped") row
    rows = {r["model"]: r for r in res.metrics["customers"]}
    assert set(rows) == {"rnn", "bgnbd"}
    assert all(math.isfinite(r["mae"]) and r["mae"] >= 0 for r in rows.values())
    assert rows["rnn"]["train_seconds"] >= 0 and sum(r["winner"] for r in rows.values()) == 1
    assert {"series", "validation", "n_customers"} <= set(res.extras["customers"])
    assert res.extras["customers"]["n_customers"] > 0
    run = load_run(res.path, check_key=True, key=key)
    assert run.manifest["metrics"]["customers"] == res.metrics["customers"]
    assert type(run.components["customers"]).__name__ == "CustomerForecaster"


def test_intent_row_is_the_saved_models_auc_on_the_test_sessions(shop_run):
    """The logged AUC is recomputed here from the saved model and the test window's own
    labels: a row scored on the wrong sessions or labels, or a model that does not
    round-trip, fails."""
    import datetime as dt

    import numpy as np

    from shopml.evaluation.metrics import auc
    from shopml.runs import load_run
    from shopml.sessions.job import session_table, with_sessions

    shop, res, key = shop_run
    rows = {r["model"]: r for r in res.metrics["sessions"]}
    assert rows["base-rate"]["auc"] == 0.5
    intent = rows["intent-gru"]
    assert 0.0 <= intent["auc"] <= 1.0 and intent["train_seconds"] >= 0
    run = load_run(res.path, check_key=True, key=key)
    assert type(run.components["intent"]).__name__ == "PurchaseIntentModel"

    events = with_sessions(_pseudonymized(shop, key)).filter(pl.col("event_type") != "return")
    test_from = dt.datetime.fromisoformat(res.periods["test_from"])
    test_ids = session_table(events).filter(pl.col("start") >= test_from)["session_id"]
    test = events.filter(pl.col("session_id").is_in(test_ids.implode()))
    bought = dict(test.group_by("session_id").agg((pl.col("event_type") == "purchase").any()).iter_rows())
    out = run.components["intent"].predict_proba(test)
    y = np.array([bought[s] for s in out["session_id"]], dtype=float)
    assert 0 < y.sum() < len(y)  # both classes in the test window, so the AUC means something
    assert intent["auc"] == pytest.approx(auc(y, np.asarray(out["p_purchase"], dtype=float)), abs=1e-12)
    cal = res.extras["sessions"]["calibration"]
    assert cal and res.extras["sessions"]["purchase_rate"] == pytest.approx(y.mean())


def test_each_job_serves_its_validation_winner(shop_run):
    _, res, _ = shop_run
    for job in ("recommend", "sessions", "customers"):
        w = res.winners[job]
        scores = w["valid_scores"]
        best = (max if w["higher_is_better"] else min)(scores, key=scores.get)
        assert w["model"] == best
        served = {r["model"] for r in res.metrics[job] if r.get("winner")}
        assert served == {best}


def test_run_reloads_and_answers_for_raw_ids(shop_run):
    from shopml.runs import load_run
    from shopml.service.engine import Engine

    shop, res, key = shop_run
    run = load_run(res.path, check_key=True, key=key)
    assert run.manifest["skipped"] == res.skipped and run.manifest["data"]["n_rows"] == shop.events.height
    assert run.manifest["params"]["winners"]["customers"]["model"] == res.winners["customers"]["model"]
    served = res.winners["customers"]["model"]
    fc = run.components["customers"].forecast(2)
    assert set(fc["forecast_model"].to_list()) == {served}
    engine = Engine(run, key)
    ans = engine.recommend_user(shop.truth.user_ids[0], k=3, explain=True)
    assert ans["fallback"] is None and len(ans["items"]) == 3


def test_no_raw_user_id_in_any_file_of_the_run(shop_run):
    shop, res, _ = shop_run
    from shopml.report import write_report

    write_report(res.path)  # the report lives in the run folder too
    raw = [u.encode() for u in shop.truth.user_ids]
    files = [p for p in res.path.rglob("*") if p.is_file()]
    assert len(files) >= 8
    for p in files:
        data = p.read_bytes()
        leaked = [u for u in raw if u in data]
        assert not leaked, f"{p.relative_to(res.path)} contains raw user ids, e.g. {leaked[0]!r}"


def test_fit_and_report_commands_on_an_event_file(tmp_path, capsys, monkeypatch):
    import json

    from shopml.cli import main

    monkeypatch.setenv("SHOPML_KEY", "11" * 32)
    shop = simulate_shop(n_users=80, n_items=30, seed=5)
    csv = tmp_path / "events.csv"
    shop.events.write_csv(csv)
    out = tmp_path / "runs" / "cli"
    main(["fit", "--events", str(csv), "--out", str(out), "--preset", "tiny", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert "recommend" in doc["metrics"] and {s["job"] for s in doc["skipped"]} >= {"pricing"}
    assert doc["winners"]["recommend"]["model"] in {r["model"] for r in doc["metrics"]["recommend"]}
    assert "What each job serves" in (out / "report.html").read_text()  # fit writes the report too
    main(["report", str(out), "--out", str(tmp_path / "r.html")])
    assert "Metrics against baselines" in (tmp_path / "r.html").read_text()
    raw = [u.encode() for u in shop.truth.user_ids]
    assert not any(u in p.read_bytes() for p in out.rglob("*") if p.is_file() for u in raw)


def test_recommend_reports_calibration_and_a_revenue_tradeoff(shop_run):
    from shopml.runs import load_run

    _, res, key = shop_run
    rec = load_run(res.path, components=False, key=key).extras["recommend"]
    cal = rec["calibration"]
    assert 0 <= cal["ece@10"] <= 1 and 0 <= cal["ece@10_raw"] <= 1 and cal["temperature"] > 0
    rel = cal["reliability"]
    assert len(rel["predicted"]) == len(rel["observed"]) == len(rel["count"]) > 0
    curve = rec["value_curve"]
    assert [r["blend"] for r in curve] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curve[0]["objective"] == "relevance" and {r["objective"] for r in curve[1:]} == {"profit"}
    # revenue@10 is there when the window's targets are purchases (not in every tiny shop)
    assert all((r["revenue@10"] is None or r["revenue@10"] >= 0) and 0 <= r["ndcg@10"] <= 1 for r in curve)
    # the relevance row is the served model's protocol-A row of the metrics table
    served = next(r for r in res.metrics["recommend"] if r.get("winner") and r["protocol"] == "A")
    assert curve[0]["ndcg@10"] == pytest.approx(served["ndcg@10"])
