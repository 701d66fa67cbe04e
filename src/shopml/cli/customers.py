"""``shopml customers fit|forecast`` and the ``customers`` and ``intent`` benchmarks.

Commands call the Python API (:mod:`shopml.customers.estimator`, :mod:`shopml.intent.tabular`);
bad input raises DataError/ConfigError, which ``shopml.cli.main`` prints as one line, exit 2.
Customer ids are pseudonymized (keyed HMAC) before anything is fitted or saved.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from shopml.cli._common import JSON_OPTION, app, benchmark_app, console, peak_rss_mb, print_json, write_benchmark
from shopml.errors import ConfigError

customers_app = typer.Typer(no_args_is_help=True, help="Customer purchase forecast (RNN vs BG/NBD).")
app.add_typer(customers_app, name="customers")

FORMAT_HELP = "cdnow (whitespace: id [sample_id] yyyymmdd cds dollars) or events (canonical event file)"


def _load(data: Path, fmt: str, pseudonymize: bool = True):
    """(ids, day, dollars, start date) from a CDNOW-format or canonical events file."""
    from shopml.customers.estimator import transactions_to_days
    from shopml.privacy import pseudonymize as pseudo

    if fmt == "cdnow":
        from shopml.data.public import read_cdnow

        tx = read_cdnow(data)
        ids, day, usd, start = transactions_to_days(tx)
        return (np.array(pseudo(ids)) if pseudonymize else ids), day, usd, start
    if fmt == "events":
        from shopml.data.events import read_events

        return transactions_to_days(read_events(data))  # read_events pseudonymizes user ids
    raise ConfigError(f"unknown --format {fmt!r}; use cdnow or events")


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))


@customers_app.command("fit")
def fit_cmd(
    data: Path = typer.Argument(..., help="transactions file"),
    out: Path = typer.Option(..., "--out", help="model folder to write"),
    fmt: str = typer.Option("cdnow", "--format", help=FORMAT_HELP),
    calibration_weeks: int = typer.Option(0, help="weeks from the first date used for fitting (0 = all)"),
    epochs: int = typer.Option(40, help="maximum epochs per ensemble member"),
    n_models: int = typer.Option(3, help="ensemble members"),
    seed: int = typer.Option(0),
    threads: int = typer.Option(2, help="torch threads"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Fit the customer RNN (and BG/NBD beside it) and save it to a model folder."""
    from shopml.customers.estimator import CustomerForecaster

    _threads(threads)
    ids, day, usd, start = _load(data, fmt)
    end = int(day.max()) if calibration_weeks <= 0 else 7 * calibration_weeks - 1
    m = CustomerForecaster(epochs=epochs, n_models=n_models, seed=seed).fit_arrays(ids, day, usd, end, start=start)
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

    _threads(threads)
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
    n_models: int = typer.Option(3),
    seed: int = typer.Option(0),
    threads: int = typer.Option(2, help="torch threads"),
) -> None:
    """RNN vs BG/NBD: per-customer holdout MAE and the cumulative weekly purchase curve."""
    from shopml.customers.bgnbd import BGNBD, rfm_summary
    from shopml.customers.estimator import CustomerForecaster, evaluate_holdout

    _threads(threads)
    ids, day, usd, start = _load(data, "cdnow")
    cal, hold = 7 * calibration_weeks - 1, 7 * (calibration_weeks + holdout_weeks) - 1
    t0 = time.perf_counter()
    r = rfm_summary(ids, day, cal)
    bg = BGNBD().fit(r["x"], r["tx"], r["T"])
    bg_seconds = time.perf_counter() - t0
    m = CustomerForecaster(n_models=n_models, seed=seed).fit_arrays(ids, day, usd, cal, start=start)
    ev = evaluate_holdout(m, ids, day, hold)
    rows = [
        # The point forecast scored as `mae`: the RNN's predictive median, BG/NBD's conditional
        # expectation (FHL 2005's forecast). Both models' mean and median are in the row as well.
        {"model": "rnn", "mae": ev["rnn"]["mae_median"], **ev["rnn"], "train_seconds": m.train_seconds_,
         "peak_rss_mb": peak_rss_mb()},
        {"model": "bgnbd", "mae": ev["bgnbd"]["mae_mean"], **ev["bgnbd"], **bg.params_, "ll": bg.log_likelihood_,
         "train_seconds": bg_seconds},
    ]
    extra = {"actual_total": ev["actual_total"], "calibration_weeks": calibration_weeks,
             "holdout_weeks": holdout_weeks, "customers": len(m.customers_), "curve": ev["curve"],
             "mae_ratio_rnn_to_bgnbd": rows[0]["mae"] / rows[1]["mae"],
             "mae_median_ratio_rnn_to_bgnbd": ev["rnn"]["mae_median"] / ev["bgnbd"]["mae_median"],
             "rmse_mean_ratio_rnn_to_bgnbd": ev["rnn"]["rmse_mean"] / ev["bgnbd"]["rmse_mean"],
             "oracle_cell_median_mae": ev["oracle_cell_median_mae"],
             "note": "mae: rnn = predictive median, bgnbd = conditional expectation (FHL 2005's forecast); "
                     "mae_median / rmse_mean compare like with like; oracle_cell_median_mae reads the "
                     "holdout (median per (x, t_x in 5-week bins) cell): a yardstick, not a model"}
    write_benchmark(out, f"cdnow ({data.name}), weeks 1-{calibration_weeks} calibration, "
                         f"{calibration_weeks + 1}-{calibration_weeks + holdout_weeks} holdout", rows, extra)


@benchmark_app.command("intent")
def bench_intent(
    data: Path = typer.Option(..., "--data", help="UCI online-shoppers CSV"),
    out: Path = typer.Option(..., "--out", help="JSON file to write (a .md twin goes beside it)"),
    folds: int = typer.Option(5),
    n_models: int = typer.Option(5, help="MLP ensemble members per fold"),
    seed: int = typer.Option(0),
    threads: int = typer.Option(2, help="torch threads"),
) -> None:
    """Neural (MLP ensemble), LightGBM and logistic regression on the same stratified folds (AUC)."""
    from shopml.data.public import read_online_shoppers
    from shopml.intent.tabular import cross_validate_intent

    _threads(threads)
    X, y = read_online_shoppers(data)
    res = cross_validate_intent(X, y, n_splits=folds, seed=seed, neural={"n_models": n_models})
    rows = [{"model": k, "auc": float(np.mean(v["auc"])), "auc_std": float(np.std(v["auc"])),
             "auc_folds": [round(a, 4) for a in v["auc"]], "train_seconds": v["train_seconds"]}
            for k, v in res.items()]
    best = max(r["auc"] for r in rows if r["model"] != "neural")
    write_benchmark(out, f"uci online shoppers ({data.name}), stratified {folds}-fold, seed {seed}", rows,
                    {"neural_minus_best_baseline": rows[0]["auc"] - best, "peak_rss_mb": peak_rss_mb()})
