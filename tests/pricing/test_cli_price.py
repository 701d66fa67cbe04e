"""CLI: price commands and the two pricing benchmarks, in-process."""

import json

import pytest

from shopml.cli import main


def run(argv, capsys):
    main(argv)
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def panels(tmp_path_factory):
    from shopml.data.market import simulate_market
    from shopml.pricing.panel import oj_layout

    d = tmp_path_factory.mktemp("panels")
    m = simulate_market(6, 8, 30, seed=0)
    m.panel.write_csv(d / "market.csv")
    oj_layout(m.panel).write_csv(d / "oj.csv")
    return d


def test_benchmark_pricing_rows(panels, tmp_path, capsys):
    out = tmp_path / "pricing.json"
    run(["benchmark", "pricing", "--data", str(panels / "oj.csv"), "--out", str(out), "--folds", "2",
         "--epochs", "2", "--members", "1"], capsys)
    doc = json.loads(out.read_text())
    models = {(r["model"], r["brand"]) for r in doc["rows"]}
    assert {("naive", "all"), ("dml", "all"), ("naive_by_brand", "p0"), ("neural", "p5"), ("dml", "p3")} <= models
    assert all("elasticity" in r and "se" in r for r in doc["rows"])
    mg = doc["montgomery"]
    # Keeping each current price is always allowed, so the optimizer can only gain on the
    # model's own profit; and the prices stay within the ±10% of the comparison.
    assert "caveat" in mg and mg["profit_change"] >= -1e-9 and abs(mg["mean_price_change"]) <= 0.1 + 1e-9
    # The same comparison under the constant-elasticity model has a closed form. With cost
    # c = 0.7 p0 and elasticity e > -1 (here DML's, about -0.3), profit (p - c) p^e rises all
    # the way to the +10% bound, so every unit moves there and the profit ratio is
    # (1.1 - 0.7) / (1 - 0.7) * 1.1^e; prices in whole cents sit up to a cent below the bound.
    e = next(r["elasticity"] for r in doc["rows"] if (r["model"], r["brand"]) == ("dml", "all"))
    assert -1 < e < 0
    lin = doc["montgomery_dml"]
    assert lin["units"] == mg["units"] and lin["mean_price_change"] == pytest.approx(0.1, abs=0.005)
    assert lin["profit_change"] == pytest.approx(0.4 / 0.3 * 1.1**e - 1, abs=0.01)
    assert out.with_suffix(".md").exists()


def test_elasticity_json_and_bad_file(panels, tmp_path, capsys):
    doc = json.loads(run(["price", "elasticity", str(panels / "market.csv"), "--method", "iv", "--instrument",
                          "cost_shifter", "--fe", "item", "--json"], capsys))
    assert doc["method"] == "iv" and doc["ci_low"] < doc["estimate"] < doc["ci_high"]
    bad = tmp_path / "bad.csv"
    bad.write_text("store,brand,week\n1,a,1\n")
    with pytest.raises(SystemExit) as e:
        main(["benchmark", "pricing", "--data", str(bad), "--out", str(tmp_path / "x.json")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "missing required column" in err and "'price'" in err and "Traceback" not in err


def test_fit_then_optimize(panels, tmp_path, capsys):
    model = tmp_path / "demand"
    run(["price", "fit", str(panels / "market.csv"), "--out", str(model), "--numeric", "promo,income",
         "--members", "2", "--epochs", "2", "--json"], capsys)
    doc = json.loads(run(["price", "optimize", "--model", str(model), "--data", str(panels / "market.csv"),
                          "--item", "1", "--store", "2", "--cost", "2.0", "--max-change", "0.1",
                          "--endings", "0.99,0.49", "--json"], capsys))
    assert round(doc["price"] % 1, 2) in (0.99, 0.49)
    assert abs(doc["price"] / doc["current_price"] - 1) <= 0.1
    assert len(doc["curve"]["prices"]) == len(doc["curve"]["profit"])
    keys = {"price", "current_price", "cost", "objective", "units", "units_low", "units_high", "revenue", "profit",
            "current_units", "current_value", "binding", "curve"}
    assert keys <= set(doc)
    with pytest.raises(SystemExit) as e:
        main(["price", "optimize", "--model", str(model), "--data", str(panels / "market.csv"), "--item", "1",
              "--cost", "2.0", "--min-price", "100", "--max-change", "0.1"])
    assert e.value.code == 2 and "no price satisfies" in capsys.readouterr().err


def test_cli_optimize_is_the_price_book(panels, tmp_path, capsys):
    """One code path: the CLI's answer is the PriceBook's, with the book's defaults (context
    of the last DEFAULT_LAST_WEEKS weeks, max_change DEFAULT_MAX_CHANGE without bounds)."""
    import polars as pl

    from shopml.pricing.demand import NeuralDemand
    from shopml.pricing.price_book import (
        DEFAULT_LAST_WEEKS,
        DEFAULT_MAX_CHANGE,
        PriceBook,
    )

    model = tmp_path / "demand"
    run(["price", "fit", str(panels / "market.csv"), "--out", str(model), "--members", "2", "--epochs", "2"], capsys)
    doc = json.loads(run(["price", "optimize", "--model", str(model), "--data", str(panels / "market.csv"),
                          "--item", "3", "--store", "1", "--cost", "1.5", "--json"], capsys))
    rows = pl.read_csv(panels / "market.csv").filter((pl.col("item") == 3) & (pl.col("store") == 1))
    recent = rows.filter(pl.col("week") > rows["week"].max() - DEFAULT_LAST_WEEKS)
    assert doc["current_price"] == round(float(recent["price"].median()), 2)
    assert abs(doc["price"] / doc["current_price"] - 1) <= DEFAULT_MAX_CHANGE + 1e-9
    book = PriceBook().fit(NeuralDemand.load(model), rows)
    assert book.optimize_item("3", unit_cost=1.5)["price"] == doc["price"]


@pytest.mark.parametrize("flags", [
    [],                                            # the defaults: 4 weeks of context, ±30%
    ["--min-price", "0.5"],                        # a bound given: no default cap
    ["--max-change", "0.1", "--endings", "0.99", "--cost", "1.0"],
    ["--objective", "revenue", "--current-price", "3.0"],
])
def test_cli_and_service_price_book_agree(flags, panels, tmp_path, capsys):
    """``shopml price optimize`` and the service's price book (fitted on the whole panel, as
    the pricing job does) propose the same price for the same item and request."""
    import polars as pl

    from shopml.pricing.demand import NeuralDemand
    from shopml.pricing.price_book import DEFAULT_LAST_WEEKS, DEFAULT_MAX_CHANGE, PriceBook

    model = tmp_path / "demand"
    run(["price", "fit", str(panels / "market.csv"), "--out", str(model), "--members", "1", "--epochs", "2"], capsys)
    doc = json.loads(run(["price", "optimize", "--model", str(model), "--data", str(panels / "market.csv"),
                          "--item", "2", *flags, "--json"], capsys))
    book = PriceBook().fit(NeuralDemand.load(model), pl.read_csv(panels / "market.csv"))
    assert (book.last_weeks, book.default_max_change) == (DEFAULT_LAST_WEEKS, DEFAULT_MAX_CHANGE)
    opts = dict(zip(flags[::2], flags[1::2]))
    request = {"objective": opts.get("--objective", "profit"),
               "unit_cost": float(opts["--cost"]) if "--cost" in opts else None,
               "current_price": float(opts["--current-price"]) if "--current-price" in opts else None,
               "min_price": float(opts["--min-price"]) if "--min-price" in opts else None,
               "max_change": float(opts["--max-change"]) if "--max-change" in opts else None,
               "endings": [float(opts["--endings"])] if "--endings" in opts else None}
    served = book.optimize_item("2", **{k: v for k, v in request.items() if v is not None})
    assert served["price"] == doc["price"] and served["current_price"] == doc["current_price"]
    assert served["objective"] == doc["objective"] and served["binding"] == list(doc["binding"])


def test_optimize_group_shares_one_price_within_every_items_bounds(panels, tmp_path, capsys):
    """`price optimize-group` is the book's decide_group: one price, feasible for every item,
    and at least as good for the group as any other shared price on its ladder."""
    import polars as pl

    from shopml.pricing.demand import NeuralDemand
    from shopml.pricing.price_book import PriceBook

    model = tmp_path / "demand"
    run(["price", "fit", str(panels / "market.csv"), "--out", str(model), "--members", "1", "--epochs", "2"], capsys)
    doc = json.loads(run(["price", "optimize-group", "--model", str(model), "--data", str(panels / "market.csv"),
                          "--items", "1,2", "--max-change", "0.25", "--json"], capsys))
    assert {i["item_id"] for i in doc["items"]} == {"1", "2"} and doc["objective"] == "profit"
    for it in doc["items"]:
        assert it["price"] == doc["price"] and abs(doc["price"] / it["current_price"] - 1) <= 0.25 + 1e-9
    book = PriceBook().fit(NeuralDemand.load(model), pl.read_csv(panels / "market.csv"))
    ladder = sorted({round(doc["price"] * f, 2) for f in (0.95, 1.0, 1.05)})
    on_ladder = book.decide_group(["1", "2"], ladder=ladder, max_change=0.25)
    assert on_ladder["price"] in ladder and on_ladder["value"] <= doc["value"] + 1e-6
    for argv, msg in ((["--items", "1"], "at least two distinct"), (["--items", "1,999"], "no rows for item")):
        with pytest.raises(SystemExit) as e:
            main(["price", "optimize-group", "--model", str(model), "--data", str(panels / "market.csv"), *argv])
        assert e.value.code == 2 and msg in capsys.readouterr().err
