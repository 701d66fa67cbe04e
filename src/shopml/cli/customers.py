"""``shopml customers fit|forecast`` and the ``customers`` and ``intent`` benchmarks.

Commands call the Python API (:mod:`shopml.customers.estimator`; the benchmarks are
:mod:`shopml.benchmarks.customers` and :mod:`shopml.benchmarks.intent`);
bad input raises DataError/ConfigError, which ``shopml.cli.main`` prints as one line, exit 2.
Customer ids are pseudonymized (keyed HMAC) before anything is fitted or saved.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.table import Table

from shopml.benchmarks.customers import load_transactions as _load
from shopml.benchmarks.customers import run_customers
from shopml.benchmarks.intent import run_intent
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
from shopml.errors import ConfigError

customers_app = typer.Typer(no_args_is_help=True, help="Customer purchase forecast (RNN vs BG/NBD).")
app.add_typer(customers_app, name="customers")

FORMAT_HELP = "cdnow (whitespace: id [sample_id] yyyymmdd cds dollars) or events (canonical event file)"


@customers_app.command("fit")
def fit_cmd(
    data: Path = typer.Argument(..., help="transactions file"),
    out: Path = typer.Option(..., "--out", help="model folder to write"),
    fmt: str = typer.Option("cdnow", "--format", help=FORMAT_HELP),
    calibration_weeks: int = typer.Option(0, help="weeks from the first date used for fitting (0 = all)"),
    epochs: int = typer.Option(40, help="maximum epochs per ensemble member"),
    n_members: int = typer.Option(3, "--n-members", "--n-models", help="ensemble members"),
    seed: int = typer.Option(0),
    threads: int = typer.Option(2, help="torch threads"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Fit the customer RNN (and BG/NBD beside it) and save it to a model folder."""
    from shopml.customers.estimator import CustomerForecaster
    from shopml.targets import check_model_target

    check_input(data)
    check_model_target(out, inputs=[data])
    set_threads(threads)
    ids, day, usd, start = _load(data, fmt)
    end = int(day.max()) if calibration_weeks <= 0 else 7 * calibration_weeks - 1
    m = CustomerForecaster(epochs=epochs, n_members=n_members, seed=seed).fit_arrays(ids, day, usd, end, start=start)
    m.save(out)
    summary = {"model": str(out), "customers": len(m.customers_), "calibration_start": start.isoformat(),
               "calibration_end": (start + dt.timedelta(days=end)).isoformat(), "bgnbd": m.bgnbd_.params_,
               "bgnbd_ll": m.bgnbd_.log_likelihood_, "train_seconds": m.train_seconds_}
    if json_out:
        print_json(summary)
    else:
        console.print(f"fitted {summary['customers']} customers ({summary['calibration_start']} .. "
                      f"{summary['calibration_end']}) in {m.train_seconds_:.1f}s -> {out}")
        console.print("BG/NBD " + ", ".join(f"{k}={v:.4g}" for k, v in m.bgnbd_.params_.items())
                      + f", LL={m.bgnbd_.log_likelihood_:.1f}")


@customers_app.command("forecast")
def forecast_cmd(
    model: Path = typer.Argument(..., help="model folder written by `shopml customers fit`"),
    weeks: int = typer.Option(39, help="forecast horizon in weeks"),
    customer: list[str] = typer.Option(None, "--customer", help="raw customer id (repeatable); unknown ones get the prior"),
    top: int = typer.Option(10, help="rows to show when no --customer is given (highest expected first)"),
    threads: int = typer.Option(2, help="torch threads"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Forecast purchases in the next N weeks: expected, median, P(active), BG/NBD and P(alive)."""
    import polars as pl

    from shopml.customers.estimator import CustomerForecaster
    from shopml.privacy import pseudonymize

    set_threads(threads)
    m = CustomerForecaster.load(model)
    if customer:
        df = m.forecast(weeks, customers=pseudonymize(customer)).with_columns(pl.Series("customer", customer))
    else:
        df = m.forecast(weeks).sort("expected_purchases", descending=True).head(top)
    if json_out:
        print_json({"weeks": weeks, "rows": df.to_dicts()})
        return
    t = Table(title=f"forecast, next {weeks} weeks")
    cols = [c for c in df.columns if c != "customer_id" or not customer]
    for c in cols:
        t.add_column(c)
    for r in df.select(cols).iter_rows():
        t.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in r])
    console.print(t)


@benchmark_app.command("customers")
def bench_customers(
    data: Path = typer.Option(..., "--data", help="CDNOW-format transactions file"),
    out: Path = typer.Option(..., "--out", help="JSON file to write (a .md twin goes beside it)"),
    calibration_weeks: int = typer.Option(39),
    holdout_weeks: int = typer.Option(39),
    n_members: int = typer.Option(3, "--n-members", "--n-models", help="ensemble members"),
    seed: int = typer.Option(0),
    threads: int = typer.Option(2, help="torch threads"),
) -> None:
    """RNN vs BG/NBD: per-customer holdout MAE and the cumulative weekly purchase curve."""
    check_input(data)
    check_out(out, inputs=[data])
    _at_least_1(calibration_weeks=calibration_weeks, holdout_weeks=holdout_weeks, n_members=n_members)
    set_threads(threads)
    with show_progress():
        res = run_customers(data, calibration_weeks=calibration_weeks, holdout_weeks=holdout_weeks,
                            n_members=n_members, seed=seed)
    write_benchmark(out, res.dataset, res.rows, res.extra)


@benchmark_app.command("intent")
def bench_intent(
    data: Path = typer.Option(..., "--data", help="UCI online-shoppers CSV"),
    out: Path = typer.Option(..., "--out", help="JSON file to write (a .md twin goes beside it)"),
    folds: int = typer.Option(5),
    n_members: int = typer.Option(5, "--n-members", "--n-models", help="MLP ensemble members per fold"),
    seed: int = typer.Option(0),
    threads: int = typer.Option(2, help="torch threads"),
) -> None:
    """Neural (MLP ensemble), LightGBM and logistic regression on the same stratified folds (AUC)."""
    check_input(data)
    check_out(out, inputs=[data])
    _at_least_1(n_members=n_members)
    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    set_threads(threads)
    with show_progress():
        res = run_intent(data, folds=folds, n_members=n_members, seed=seed)
    write_benchmark(out, res.dataset, res.rows, res.extra)


def _at_least_1(**options: int) -> None:
    for name, value in options.items():
        if value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
