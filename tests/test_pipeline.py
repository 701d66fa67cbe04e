"""fit_all's orchestration: a failing job keeps the others' models, --jobs picks jobs, the
time budget is split and honoured, and the time line is cut as documented."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shopml import pipeline
from shopml.data.simulate import simulate_shop
from shopml.errors import ConfigError
from shopml.jobs import Periods, pick_winner


@pytest.fixture(scope="module")
def events():
    shop = simulate_shop(n_users=150, n_items=40, seed=3)
    return shop.events


def test_a_failing_job_is_reported_and_the_others_are_saved(events, tmp_path, monkeypatch):
    from shopml.runs import load_run

    def boom(events, ctx):
        raise FloatingPointError("price must be positive")

    real = pipeline._fitters()
    monkeypatch.setattr(pipeline, "_fitters", lambda: {**real, "customers": boom})
    res = pipeline.fit_all(events, tmp_path / "run", config=pipeline.FitConfig.preset("tiny"),
                           jobs=("recommend", "customers"))
    failed = {s["job"]: s for s in res.skipped}
    assert failed["customers"]["status"] == "failed"
    assert "FloatingPointError: price must be positive" in failed["customers"]["reason"]
    run = load_run(tmp_path / "run")
    assert "recommend" in run.components and run.manifest["skipped"] == res.skipped


def test_jobs_subset_and_unknown_job(events, tmp_path):
    res = pipeline.fit_all(events, tmp_path / "r", config=pipeline.FitConfig.preset("tiny"), jobs=("customers",))
    assert set(res.metrics) | {s["job"] for s in res.skipped} == {"customers"}
    with pytest.raises(ConfigError, match="unknown job"):
        pipeline.fit_all(events, tmp_path / "r2", jobs=("recommend", "nope"))


def test_budget_shares_roll_over():
    import time

    t0 = time.perf_counter()
    first = pipeline._job_budget(600.0, t0, ("recommend", "sessions", "customers", "pricing"))
    assert first == pytest.approx(600 * 0.45, rel=0.01)
    last = pipeline._job_budget(600.0, t0, ("pricing",))
    assert last == pytest.approx(600, rel=0.01)  # everything left goes to the last job
    assert pipeline._job_budget(None, t0, ("pricing",)) is None


def test_default_test_window_holds_ten_percent_of_span_and_of_events():
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    # 90 events in the first 10 days, 10 spread over the next 90: a fading tail
    times = [start + dt.timedelta(hours=2 * i) for i in range(90)] + \
            [start + dt.timedelta(days=10 + 9 * i) for i in range(10)]
    ev = pl.DataFrame({"timestamp": times})
    p = pipeline.periods_of(ev)
    n_test = sum(t >= p.test_from for t in times)
    assert n_test >= 10 and p.end - p.test_from >= (p.end - p.start) * 0.1
    assert p.start < p.valid_from < p.test_from <= p.end


def test_test_from_outside_the_log_is_refused():
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(ConfigError, match="inside the log"):
        Periods.from_times(start, start + dt.timedelta(days=10), start + dt.timedelta(days=20))


def test_pick_winner_margin_and_direction():
    w = pick_winner({"rnn": 1.2, "bgnbd": 1.0, "x": None}, "mae", higher_is_better=False, neural="rnn")
    assert (w["model"], w["runner_up"], w["neural_won"]) == ("bgnbd", "rnn", False)
    assert w["margin"] == pytest.approx(0.2)


def test_a_log_of_views_only_fits_what_it_can_and_saves(events, tmp_path):
    from shopml.runs import load_run

    views = events.filter(pl.col("event_type") == "view").drop("price")
    res = pipeline.fit_all(views, tmp_path / "views", config=pipeline.FitConfig.preset("tiny"),
                           jobs=("recommend", "customers", "pricing"))
    skipped = {s["job"]: s for s in res.skipped}
    assert skipped["customers"]["status"] == "skipped" and "no purchases" in skipped["customers"]["reason"]
    assert skipped["pricing"]["status"] == "skipped" and "price" in skipped["pricing"]["reason"]
    assert "recommend" in res.metrics  # targets fall back to interactions when nobody buys
    assert "recommend" in load_run(tmp_path / "views").components

