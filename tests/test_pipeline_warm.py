"""``fit_all(warm_start=RUN)``: the previous run's recommender and customer models continue on
the longer log; item ids keep their rows, new items and users join, the previous choice of
model is kept, and a folder that is not a fit run is refused in one line."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shopml import pipeline
from shopml.data.simulate import simulate_shop
from shopml.errors import ConfigError
from shopml.runs import load_run, save_run


@pytest.fixture(scope="module")
def log():
    return simulate_shop(n_users=200, n_items=50, seed=5).events


@pytest.fixture()
def first(log, tmp_path):  # per test: each test has its own pseudonymization key
    start, end = log["timestamp"].min(), log["timestamp"].max()
    early = log.filter(pl.col("timestamp") < start + (end - start) * 0.6)
    path = tmp_path / "first"
    pipeline.fit_all(early, path, config=pipeline.FitConfig.preset("tiny"), jobs=("recommend", "customers"))
    return path


def test_warm_start_continues_the_previous_models(log, first, tmp_path):
    before = load_run(first)
    # one item the first run never saw, bought by a user it never saw, before the test window
    cut = pipeline.periods_of(log).test_from - dt.timedelta(days=1)
    extra = log.head(3).with_columns(pl.lit("brand-new-user").alias("user_id"), pl.lit("brand-new-item").alias("item_id"),
                                     pl.lit(cut).alias("timestamp"))
    res = pipeline.fit_all(pl.concat([log, extra]), tmp_path / "warm", config=pipeline.FitConfig.preset("tiny"),
                           jobs=("recommend", "customers"), warm_start=first)
    run = load_run(tmp_path / "warm")
    rec = run.get("recommend")
    assert run.items[: len(before.items)] == before.items, "known items keep their rows"
    assert "brand-new-item" in rec.item_ids_ and "brand-new-user" in rec.user_ids_
    assert rec.fit_info_["mode"] == "warm" and rec.fit_info_["rows"] >= 1
    assert type(rec) is type(before.get("recommend"))
    assert all(r.get("mode") == "warm" for job in ("recommend", "customers") for r in res.metrics[job])
    assert run.manifest["params"]["warm_start"]["fingerprint"] == before.fingerprint
    assert rec.recommend(["brand-new-user"], k=5, exclude_seen=False)
    assert run.get("customers").winner_ == before.get("customers").winner_


def test_warm_start_from_a_folder_that_is_not_a_fit_run_is_refused(log, tmp_path):
    with pytest.raises(ConfigError, match="not a shopml run folder"):
        pipeline.fit_all(log, tmp_path / "x", warm_start=tmp_path / "nothing-here")
    save_run(tmp_path / "bare", components={})
    with pytest.raises(ConfigError, match="not written by shopml fit"):
        pipeline.load_previous(tmp_path / "bare")


def test_a_job_the_previous_run_lacks_is_fitted_afresh(log, first):
    prev = load_run(first)
    assert pipeline._fitter("recommend", prev).__name__ == "refresh_recommend"
    assert pipeline._fitter("sessions", prev).__name__ == "fit_sessions"
    assert pipeline._fitter("recommend", None).__name__ == "fit_recommend"
    assert dt.datetime.fromisoformat(prev.manifest["params"]["periods"]["test_from"])


def test_a_log_that_starts_after_the_previous_run_is_warned_about(log, first, tmp_path):
    cut = pipeline.periods_of(log).start + dt.timedelta(days=10)
    said = []
    pipeline.fit_all(log.filter(pl.col("timestamp") >= cut), tmp_path / "late", config=pipeline.FitConfig.preset("tiny"),
                     jobs=("recommend",), warm_start=first, log=said.append)
    assert any("give the whole log" in m for m in said)
