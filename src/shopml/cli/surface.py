"""``shopml demo``, ``shopml report`` and ``shopml serve`` (``shopml fit`` is in :mod:`shopml.cli.fit`)."""

from __future__ import annotations

import os
import secrets
import time
from enum import Enum
from pathlib import Path

import typer

from shopml.cli._common import app, console, console_err
from shopml.cli.fit import Preset
from shopml.errors import ConfigError


class LogLevel(str, Enum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"

def _pseudonymized(frame, cols=("user_id", "session_id")):
    """Replace raw user (and session) ids by keyed pseudonyms, as read_events does; the
    simulator returns raw ids, and its session ids embed the raw user id."""
    import polars as pl

    from shopml.privacy import load_key, pseudonymize

    key = load_key()
    cols = [c for c in cols if c in frame.columns]
    return frame.with_columns([pl.Series(c, pseudonymize(frame[c].cast(pl.Utf8).to_list(), key=key)) for c in cols])


def _demo_market(shop, seed: int, n_items: int = 12):
    """A simulated store x week price panel (known elasticities) for the shop's first items:
    the shop's own prices never change, so pricing needs this separate market."""
    import polars as pl

    from shopml.data.market import simulate_market

    market = simulate_market(n_items=n_items, n_stores=8, n_weeks=52, seed=seed)
    names = pl.Series(shop.truth.item_ids[:n_items])
    panel = market.panel.with_columns(pl.col("item").map_elements(lambda i: names[i], return_dtype=pl.Utf8))
    return panel, market.truth.elasticity


def _validate(events, path=None) -> dict:
    """Validation warnings + quality report, printed as a short table."""
    from shopml.data.quality import quality_report
    from shopml.data.validate import validate_events

    return quality_report(events, validate_events(events))


def _print_quality(report: dict) -> None:
    from rich.table import Table

    table = Table(title="data quality", show_header=False)
    for k, v in report.items():
        if k == "warnings":
            continue
        table.add_row(str(k), str(v) if not isinstance(v, float) else f"{v:.4g}")
    console.print(table)
    for w in report.get("warnings") or []:
        console.print(f"[yellow]warning[/]: {w.get('message', w) if isinstance(w, dict) else w}")


@app.command("report")
def report_cmd(
    run: Path = typer.Argument(..., help="Run folder."),
    out: Path = typer.Option(None, "--out", help="HTML file (default RUN/report.html)."),
):
    """Write the run's self-contained HTML report."""
    from shopml.report import write_report

    console.print(f"report written to {write_report(run, out)}")


@app.command("serve")
def serve_cmd(
    run: Path = typer.Option(..., "--run", help="Run folder to serve."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port (1-65535)."),
    threads: int = typer.Option(2, "--threads", min=1, max=256, help="torch threads (>= 1)."),
    log_level: LogLevel = typer.Option(LogLevel.warning, "--log-level", help="uvicorn's log level."),
):
    """Serve the run over HTTP (FastAPI + uvicorn). API keys come from SHOPML_API_KEYS or
    SHOPML_API_KEYS_FILE; without either, a one-off admin key is generated and printed."""
    import torch
    import uvicorn

    from shopml.service import create_app
    from shopml.service.auth import ApiKeys

    if not run.is_dir():
        raise ConfigError(f"--run {run}: no such run folder")
    torch.set_num_threads(threads)
    keys = ApiKeys.from_env()
    if not len(keys):
        one_off = secrets.token_urlsafe(24)
        keys = ApiKeys.from_mapping({one_off: "*"})
        console_err.print(f"no SHOPML_API_KEYS set: using the one-off key {one_off} (all scopes)")
    application = create_app(run, api_keys=keys)
    console_err.print(f"serving {run} on http://{host}:{port} (docs at /docs)")
    uvicorn.run(application, host=host, port=port, log_level=log_level.value, access_log=False)


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder to write."),
    users: int = typer.Option(1500, "--users", help="Simulated shop users."),
    items: int = typer.Option(300, "--items", help="Simulated shop items."),
    preset: Preset = typer.Option(Preset.demo, "--preset", help="Model sizes: demo (fast), tiny or full."),
    seed: int = typer.Option(0, "--seed"),
    max_minutes: float = typer.Option(2.0, "--max-minutes", min=0.0,
                                      help="Wall-time budget of the fit, split across the jobs (0 = none)."),
):
    """Simulate a shop, validate it, fit all jobs vs baselines, write the report and show
    sample recommendations (with explanations), session predictions and price proposals."""
    from shopml import progress
    from shopml.cli.fit import plain, print_fit
    from shopml.cli.render import FitProgress
    from shopml.data.simulate import simulate_shop
    from shopml.pipeline import FitConfig, fit_all
    from shopml.report import write_report
    from shopml.runs import check_run_target

    check_run_target(out)
    t0 = time.perf_counter()
    os.environ.setdefault("SHOPML_THREADS", "2")
    shop = simulate_shop(n_users=users, n_items=items, seed=seed)
    raw_users = shop.events["user_id"].unique(maintain_order=True).head(3).to_list()
    events = _pseudonymized(shop.events)
    console.rule("1. simulated shop: validation and quality report")
    quality = _validate(events)
    _print_quality(quality)
    console.rule("2. fitting every job against its baselines")
    panel, elasticity = _demo_market(shop, seed)
    console.print(f"pricing data: simulated market panel, {panel.height} item x store x week rows")
    with FitProgress() as bar, progress.listen(bar):
        res = fit_all(events, out, config=FitConfig.preset(preset.value), quality=quality, price_panel=panel,
                      max_minutes=max_minutes or None,
                      price_truth=elasticity, session_truth=_pseudonymized(shop.truth.sessions), log=plain)
    print_fit(res)
    console.rule("3. report")
    report = write_report(out)
    console.print(f"report: [bold]{report}[/]")
    console.rule("4. sample answers (the same calls the HTTP service makes)")
    _show_samples(out, raw_users, shop.events)
    console.print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s; serve it with "
                  f"[bold]shopml serve --run {out}[/]")


def _show_samples(run_path: Path, raw_users: list, raw_events) -> None:
    """Print what the service would answer: recommendations with explanations for a few
    (raw) user ids, next-item and purchase predictions for a session, price proposals."""
    from shopml.errors import ShopMLError
    from shopml.service.engine import Engine

    engine = Engine.load(run_path)
    if "recommend" in engine.run.components:
        for raw in raw_users:
            ans = engine.recommend_user(str(raw), k=3, explain=True)
            console.print(f"[bold]user {raw}[/] -> recommendations ({ans['model']}):")
            for r in ans["items"]:
                why = ", ".join(f"{b['item_id']} ({b['contribution']:+.2f})" for b in r["because"])
                console.print(f"   {r['item_id']}  score {r['score']:.3f}   because of: {why or '-'}")
    if "sessions" in engine.run.components and "session_id" in raw_events.columns:
        sid = raw_events["session_id"].drop_nulls().unique(maintain_order=True)[0]
        sess = raw_events.filter(raw_events["session_id"] == sid).sort("timestamp")
        items, types = sess["item_id"].to_list()[:4], sess["event_type"].to_list()[:4]
        ans = engine.predict_session(items, event_types=types, k=3)
        prob = ans["purchase_probability"]
        console.print(f"[bold]session[/] {' -> '.join(items)}: next {[i['item_id'] for i in ans['next_items']]}, "
                      f"P(purchase) = {'n/a' if prob is None else f'{prob:.3f}'}")
    if "pricing" in engine.run.components:
        for item in engine.run.extras.get("pricing", {}).get("items", [])[:3]:
            try:
                p = engine.optimize_price(item["item_id"], {"max_change": 0.2})
            except ShopMLError as e:
                console.print(f"[bold]price[/] {item['item_id']}: {e}")
                continue
            console.print(f"[bold]price[/] {item['item_id']}: propose {p['price']:.2f} "
                          f"(units {p['expected_units']:.1f}, profit {p.get('profit') or float('nan'):.2f}, "
                          f"binding: {', '.join(p.get('binding', [])) or 'none'})")
