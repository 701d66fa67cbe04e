"""The price book's per-item demand choice: each item is priced by the demand model with the
lowest error on its validation weeks, every answer names the model it used, and the choice
survives save/load."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from shopml.pricing.choice import choose_per_item, loglinear_candidates
from shopml.pricing.elasticity import estimate_elasticity
from shopml.pricing.loglinear import LogLinearDemand
from shopml.pricing.price_book import PriceBook


def _panel(seed=0):
    """Items a*: units follow a constant elasticity of -2 exactly (a log-linear demand is
    right); items b*: units fall off a cliff above price 5 (no constant elasticity fits)."""
    rng = np.random.default_rng(seed)
    rows = []
    for item in [f"a{j}" for j in range(4)] + [f"b{j}" for j in range(4)]:
        for week in range(40):
            p = float(np.exp(rng.normal(np.log(5.0), 0.15)))
            units = 200 * p ** -2.0 if item[0] == "a" else (40.0 if p < 5 else 4.0)
            rows.append({"item": item, "store": "all", "week": week, "price": p,
                         "units": units * float(np.exp(rng.normal(0, 0.02)))})
    return pl.DataFrame(rows).with_columns(pl.col("units").log().alias("log_units"))


class _Cliff:
    """A stand-in 'neural' demand that knows the b items' cliff and is wrong on the a items."""

    def predict(self, data):
        p, item = data["price"].to_numpy(), data["item"].to_list()
        return np.array([(40.0 if q < 5 else 4.0) if i[0] == "b" else 2.0 for q, i in zip(p, item)])

    def curve(self, context, prices):
        item = context["item"][0]
        p = np.asarray(prices, dtype=float)
        return (np.where(p < 5, 40.0, 4.0) if item[0] == "b" else np.full(len(p), 2.0))[None, :]


def test_each_item_gets_the_demand_that_fits_it_on_validation_weeks():
    panel = _panel()
    train, valid = panel.filter(pl.col("week") < 30), panel.filter(pl.col("week") >= 30)
    smooth = train.filter(pl.col("item").str.starts_with("a"))
    est = {"naive": estimate_elasticity(smooth, "naive", fixed_effects=["item"])}
    assert abs(est["naive"].estimate + 2.0) < 0.05
    cands = {"neural": _Cliff(), **loglinear_candidates(train, est)}
    choice, default, rows = choose_per_item(cands, valid)
    assert all(choice[f"a{j}"] == "loglinear-naive" and choice[f"b{j}"] == "neural" for j in range(4))
    assert {r["model"]: r["items_chosen"] for r in rows} == {"neural": 4, "loglinear-naive": 4}
    assert default == min(rows, key=lambda r: r["wape"])["model"]


def test_the_book_prices_with_the_chosen_model_and_says_which(tmp_path):
    panel = _panel()
    ll = LogLinearDemand(elasticity=-2.0).fit(panel)
    neural = LogLinearDemand(elasticity=-0.5).fit(panel)  # any demand can sit in the neural slot
    book = PriceBook().fit(neural, panel, alternatives={"loglinear-dml": ll}, item_model={"a0": "loglinear-dml"})
    assert book.demand_model("a0") == "loglinear-dml" and book.demand_model("b0") == "neural"
    a0, b0 = book.optimize_item("a0", objective="revenue"), book.optimize_item("b0", objective="revenue")
    assert a0["demand_model"] == "loglinear-dml" and b0["demand_model"] == "neural"
    # revenue p * p^-2 falls with price, p * p^-0.5 rises: the two items move opposite ways
    assert a0["price"] < a0["current_price"] < b0["current_price"] * 10 and b0["price"] > b0["current_price"]
    assert book.curve("a0")["demand_model"] == "loglinear-dml"


def test_loglinear_predict_matches_its_curve():
    panel = _panel()
    ll = LogLinearDemand(elasticity=-2.0).fit(panel)
    row = panel.head(1)
    assert ll.predict(row)[0] == pytest.approx(ll.curve(row, [row["price"][0]])[0, 0])


def test_the_choice_survives_save_and_load(tmp_path):
    from shopml.pricing.demand import NeuralDemand

    panel = _panel()
    neural = NeuralDemand(categorical=["item"], n_members=1, epochs=2, progress=False, threads=1).fit(panel)
    ll = LogLinearDemand(elasticity=-2.0, se=0.1).fit(panel)
    book = PriceBook().fit(neural, panel, alternatives={"loglinear-iv": ll}, item_model={"a1": "loglinear-iv"},
                           default_model="neural")
    book.save(tmp_path / "book")
    again = PriceBook.load(tmp_path / "book")
    assert again.demand_model("a1") == "loglinear-iv" and again.demand_model("b2") == "neural"
    for item in ("a1", "b2"):
        assert again.optimize_item(item)["price"] == book.optimize_item(item)["price"]
