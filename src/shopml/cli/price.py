"""``shopml price elasticity|fit|optimize|backtest|simulate`` and ``shopml benchmark pricing|pricing-sim``.

Each command parses options and calls the Python API in :mod:`shopml.pricing` (the benchmarks:
:mod:`shopml.benchmarks.pricing`).
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import typer

from shopml.benchmarks.pricing import run_pricing, run_pricing_sim
from shopml.cli._common import (
    JSON_OPTION,
    app,
    benchmark_app,
    check_input,
    check_out,
    console,
    print_json,
    set_threads,
    show_progress,
    write_benchmark,
)
from shopml.data.public import read_table
from shopml.errors import ConfigError, DataError
from shopml.pricing.price_book import DEFAULT_LAST_WEEKS, DEFAULT_MAX_CHANGE, PriceBook

price_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False,
                        help="Price optimization: elasticities, monotone neural demand, constrained prices.")
app.add_typer(price_app, name="price")


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@price_app.command("elasticity")
def elasticity_cmd(
    data: Path = typer.Argument(..., help="CSV/Parquet table"),
    method: str = typer.Option("naive", help="naive | dml | iv"),
    y: str = typer.Option("log_units", help="log-quantity column (or units with --units)"),
    units: bool = typer.Option(False, "--units", help="--y holds units, not log units"),
    price: str = typer.Option("price"),
    fixed_effects: str = typer.Option("", "--fe", help="comma-separated fixed-effect columns"),
    controls: str = typer.Option("", help="comma-separated control columns"),
    instrument: str = typer.Option(None, help="instrument column (iv)"),
    segment: str = typer.Option(None, help="also estimate per value of this column"),
    threads: int = typer.Option(2),
    json_out: bool = JSON_OPTION,
):
    """Estimate the own-price elasticity with a standard error and 95% interval."""
    from shopml.pricing.elasticity import estimate_elasticity

    df = read_table(data)
    r = estimate_elasticity(df, method, y=y, y_is_log=not units, price=price, fixed_effects=_split(fixed_effects),
                            controls=_split(controls), instrument=instrument, segment=segment, threads=threads)
    if json_out:
        return print_json(r.to_dict())
    console.print(f"{method}: elasticity {r.estimate:.4f} (se {r.se:.4f}, 95% [{r.ci_low:.4f}, {r.ci_high:.4f}]), n={r.n}")
    for s in r.segments:
        console.print(f"  {s['segment']}: {s['estimate']:.4f} (se {s['se']:.4f})")


@price_app.command("fit")
def fit_cmd(
    data: Path = typer.Argument(...),
    out: Path = typer.Option(..., help="model folder to write"),
    y: str = typer.Option("log_units"),
    price: str = typer.Option("price"),
    categorical: str = typer.Option("item,store", help="comma-separated categorical columns"),
    numeric: str = typer.Option("", help="comma-separated numeric columns"),
    item: str = typer.Option("item", help="column that elasticity curves index"),
    members: int = typer.Option(5), epochs: int = typer.Option(20), threads: int = typer.Option(2),
    json_out: bool = JSON_OPTION,
):
    """Train the monotone neural demand ensemble and save it (JSON + safetensors)."""
    from shopml.pricing.demand import NeuralDemand
    from shopml.targets import check_model_target

    check_input(data)
    check_model_target(out, inputs=[data])
    set_threads(threads)
    df = read_table(data)
    t0 = time.perf_counter()
    m = NeuralDemand(y=y, price=price, categorical=_split(categorical), numeric=_split(numeric), item=item,
                     n_members=members, epochs=epochs, threads=threads).fit(df)
    m.save(out)
    by = m.average_elasticity(df, by=item)
    doc = {"model": str(out), "holdout_rmse": m.holdout_rmse_, "train_seconds": time.perf_counter() - t0,
           "elasticity_by_item": by}
    if json_out:
        return print_json(doc)
    console.print(f"saved {out} (holdout RMSE of log units {m.holdout_rmse_:.4f})")


def _numbers(value: str | None, option: str) -> list[float] | None:
    try:
        return [float(e) for e in _split(value)] or None
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated numbers, e.g. 0.99,0.49") from None


@price_app.command("optimize")
def optimize_cmd(
    model: Path = typer.Option(..., help="model folder from `shopml price fit`"),
    data: Path = typer.Option(..., help="table with the context rows"),
    item: str = typer.Option(..., help="value of the model's item column"),
    store: str = typer.Option(None, help="restrict the context to this store (column 'store')"),
    current_price: float = typer.Option(None, help="default: the context's median price"),
    cost: float = typer.Option(None, help="default: the context's mean 'cost' column; none: revenue"),
    objective: str = typer.Option("profit"),
    min_price: float = typer.Option(None), max_price: float = typer.Option(None),
    # None, not DEFAULT_MAX_CHANGE: the cap applies only when no bound is given (PriceBook.decide).
    max_change: float = typer.Option(None, help=f"default: ±{DEFAULT_MAX_CHANGE:g} when neither --min-price "
                                     "nor --max-price is given (the service's rule)"),
    min_margin: float = typer.Option(None),
    endings: str = typer.Option(None, help="e.g. 0.99,0.49"), ladder: str = typer.Option(None),
    last_weeks: int = typer.Option(DEFAULT_LAST_WEEKS, help="context = the item's last N weeks (column 'week'), "
                                   "as the service's price book"),
    json_out: bool = JSON_OPTION,
):
    """Best price for one item (x store) under the constraints, with intervals and curves.
    The same rules as the service: see :mod:`shopml.pricing.price_book`."""
    from shopml.pricing.demand import NeuralDemand

    if last_weeks < 1:
        raise ConfigError(f"--last-weeks must be at least 1, got {last_weeks}")
    m = NeuralDemand.load(model)
    df = read_table(data)
    rows = df.filter(pl.col(m.item).cast(pl.Utf8) == item)
    if store is not None:
        rows = rows.filter(pl.col("store").cast(pl.Utf8) == store)
    if rows.height == 0:
        raise DataError(f"no rows for item {item!r}" + (f" in store {store!r}" if store else ""), path=data)
    book = PriceBook(item=m.item, last_weeks=last_weeks).fit(m, rows)
    d = book.decide(item, objective=objective, unit_cost=cost, current_price=current_price, min_price=min_price,
                    max_price=max_price, max_change=max_change, min_margin=min_margin,
                    endings=_numbers(endings, "--endings"), ladder=_numbers(ladder, "--ladder"))
    if json_out:
        return print_json(d)
    console.print(f"item {item}: price {d['price']:.2f} (current {d['current_price']:.2f}), units {d['units']:.1f} "
                  f"[{d['units_low']:.1f}, {d['units_high']:.1f}], binding: {', '.join(d['binding']) or 'none'}")


@price_app.command("optimize-group")
def optimize_group_cmd(
    model: Path = typer.Option(..., help="model folder from `shopml price fit`"),
    data: Path = typer.Option(..., help="table with the context rows"),
    items: str = typer.Option(..., help="comma-separated item ids that must share one price"),
    objective: str = typer.Option("profit"),
    min_price: float = typer.Option(None), max_price: float = typer.Option(None),
    max_change: float = typer.Option(None, help=f"default: ±{DEFAULT_MAX_CHANGE:g} around every item's current "
                                     "price when neither --min-price nor --max-price is given"),
    min_margin: float = typer.Option(None),
    endings: str = typer.Option(None, help="e.g. 0.99,0.49"), ladder: str = typer.Option(None, help="e.g. 2.99,3.49"),
    last_weeks: int = typer.Option(DEFAULT_LAST_WEEKS, help="context = each item's last N weeks (column 'week')"),
    json_out: bool = JSON_OPTION,
):
    """One shared price for a group of items (one shelf price, a shared ladder) that maximizes
    their summed profit; the same rules as `price optimize` and the service."""
    from shopml.pricing.demand import NeuralDemand

    if last_weeks < 1:
        raise ConfigError(f"--last-weeks must be at least 1, got {last_weeks}")
    ids = _split(items)
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise ConfigError("--items needs at least two distinct item ids, e.g. --items 5,7")
    if objective not in ("profit", "revenue"):
        raise ConfigError(f"--objective must be profit or revenue, got {objective!r}")
    m = NeuralDemand.load(model)
    df = read_table(data)
    rows = df.filter(pl.col(m.item).cast(pl.Utf8).is_in(ids))
    missing = sorted(set(ids) - set(rows[m.item].cast(pl.Utf8).unique().to_list()))
    if missing:
        raise DataError(f"no rows for item(s) {', '.join(missing)}", path=data)
    book = PriceBook(item=m.item, last_weeks=last_weeks).fit(m, rows)
    d = book.decide_group(ids, objective=objective, min_price=min_price, max_price=max_price, max_change=max_change,
                          min_margin=min_margin, endings=_numbers(endings, "--endings"),
                          ladder=_numbers(ladder, "--ladder"))
    if json_out:
        return print_json(d)
    console.print(f"items {', '.join(ids)}: shared price {d['price']:.2f}, {d['objective']} {d['value']:.2f} "
                  f"[{d['value_interval']['low']:.2f}, {d['value_interval']['high']:.2f}]", markup=False)


@price_app.command("backtest")
def backtest_cmd(
    items: int = typer.Option(50), stores: int = typer.Option(20), weeks: int = typer.Option(52),
    seed: int = typer.Option(0), threads: int = typer.Option(2), json_out: bool = JSON_OPTION,
):
    """Elasticity error and regret of naive, DML, IV and neural on the confounded simulator."""
    from shopml.pricing.backtest import run_backtest

    set_threads(threads)
    res = run_backtest(items, stores, weeks, seed, threads=threads)
    if json_out:
        return print_json(res)
    from shopml.cli._common import markdown_table

    console.print(markdown_table(res["rows"]), markup=False)


@price_app.command("simulate")
def simulate_cmd(
    out: Path = typer.Option(...), items: int = typer.Option(50), stores: int = typer.Option(20),
    weeks: int = typer.Option(52), seed: int = typer.Option(0),
    layout: str = typer.Option("market", help="market (all columns) | oj (store,brand,week,logmove,feat,price)"),
    confounded: bool = typer.Option(True, "--confounded/--no-confounded", help="prices react to the hidden shock"),
):
    """Write a simulated price panel (CSV or Parquet by suffix)."""
    from shopml.data.market import simulate_market
    from shopml.pricing.panel import oj_layout

    panel = simulate_market(items, stores, weeks, confounded=confounded, seed=seed).panel
    if layout not in ("market", "oj"):
        raise ConfigError(f"unknown layout {layout!r}: use market or oj")
    panel = oj_layout(panel) if layout == "oj" else panel
    out.parent.mkdir(parents=True, exist_ok=True)
    panel.write_parquet(out) if out.suffix == ".parquet" else panel.write_csv(out)
    console.print(f"wrote {panel.height} rows to {out}")


@benchmark_app.command("pricing")
def bench_pricing(
    data: Path = typer.Option(..., help="panel: store, brand, week, logmove, feat, price"),
    demo: Path = typer.Option(None, help="store demographics CSV joined on store"),
    out: Path = typer.Option(Path("benchmarks/results/pricing.json")),
    folds: int = typer.Option(5, help="neural K-fold stability check (0 = skip)"),
    epochs: int = typer.Option(20), members: int = typer.Option(3),
    cost_fraction: float = typer.Option(0.7, help="assumed unit cost / current price (Montgomery comparison)"),
    threads: int = typer.Option(2), seed: int = typer.Option(0),
):
    """Elasticities (naive, naive_by_brand, dml, neural) per brand + the Montgomery comparison."""
    check_input(data)
    check_input(demo)
    check_out(out, inputs=[data, demo])
    set_threads(threads)
    with show_progress():
        res = run_pricing(data, demo, folds=folds, epochs=epochs, members=members, cost_fraction=cost_fraction,
                          threads=threads, seed=seed)
    write_benchmark(out, res.dataset, res.rows, res.extra)
    mg = res.extra["montgomery"]
    console.print(f"Montgomery comparison: model-based profit change {mg['profit_change']:+.2%} with prices within "
                  f"±{mg['max_change']:.0%} (published 2.74%). Caveat: {mg['caveat']}", markup=False)


@benchmark_app.command("pricing-sim")
def bench_pricing_sim(
    out: Path = typer.Option(Path("benchmarks/results/pricing_sim.json")),
    items: int = typer.Option(50), stores: int = typer.Option(20), weeks: int = typer.Option(52),
    seed: int = typer.Option(0), threads: int = typer.Option(2),
):
    """Backtest on the confounded simulator: elasticity_error, regret, violations per method."""
    check_out(out)
    set_threads(threads)
    with show_progress():
        res = run_pricing_sim(items, stores, weeks, seed, threads=threads)
    write_benchmark(out, res.dataset, res.rows, res.extra)
