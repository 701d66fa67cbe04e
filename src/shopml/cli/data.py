"""``shopml validate`` (data-quality report) and ``shopml benchmark ingest``.

Both call the Python API (:func:`shopml.data.events.load_events`,
:func:`shopml.data.quality.quality_report`, :mod:`shopml.benchmarks.ingest`); bad data
raises DataError, which ``shopml.cli.main`` prints as one line with exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from shopml.benchmarks.ingest import run_ingest
from shopml.cli import inputs as opt
from shopml.cli._common import (
    JSON_OPTION,
    app,
    benchmark_app,
    check_out,
    console,
    print_json,
    show_progress,
    write_benchmark,
)
from shopml.errors import ConfigError
from shopml.targets import check_new_file


@app.command("validate")
def validate_cmd(
    path: str = typer.Argument(..., help=opt.EVENTS_HELP),
    format: opt.Format = opt.FORMAT,
    column_map: list[str] = opt.MAP,
    event_map: list[str] = opt.EVENT_MAP,
    event_type: str = opt.EVENT_TYPE,
    timestamp_format: str = opt.TS_FORMAT,
    missing_user: opt.MissingUser = opt.MISSING_USER,
    bad_prices: opt.BadPrices = opt.BAD_PRICES,
    exclude_items: str = opt.EXCLUDE,
    table: str = opt.TABLE,
    query: str = opt.QUERY,
    json_out: bool = JSON_OPTION,
) -> None:
    """Validate an event log and print its data-quality report (exit 2 when invalid)."""
    from shopml.data.events import load_events
    from shopml.data.quality import quality_report

    kwargs = opt.checked_load_kwargs(path, locals())
    with console.status(f"validating {path} ...") if not json_out else _quiet():
        df, warnings = load_events(path, **kwargs)
        report = quality_report(df, warnings)
    report = {"path": str(path), "format": kwargs["format"], "valid": True, **report}
    if json_out:
        print_json(report)
    else:
        _print_report(report)


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 1000 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "-" if v is None else str(v)


def _print_report(r: dict) -> None:
    overview = Table(title=f"{r['path']} ({r['format']}): valid", show_header=False)
    for key in ("events", "users", "items", "sessions", "sessions_from", "events_per_user", "sparsity",
                "cold_user_share", "cold_item_share", "timestamp_min", "timestamp_max", "span_days",
                "purchasers", "repeat_purchase_rate", "repeat_item_purchase_rate"):
        if key in r:
            overview.add_row(key, _fmt(r[key]))
    console.print(overview)
    types = Table(title="events by type")
    types.add_column("event_type")
    types.add_column("events", justify="right")
    types.add_column("share", justify="right")
    for t, n in r["events_by_type"].items():
        types.add_row(t, _fmt(n), f"{n / max(r['events'], 1):.1%}")
    console.print(types)
    if r["price"]:
        prices = Table(title="price")
        for k in r["price"]:
            prices.add_column(k, justify="right")
        prices.add_row(*(_fmt(v) for v in r["price"].values()))
        console.print(prices)
    _print_excluded(r)
    if r["warnings"]:
        warn = Table(title="warnings")
        for c in ("kind", "count", "first row", "message"):
            warn.add_column(c)
        for w in r["warnings"]:
            warn.add_row(w["kind"], _fmt(w["count"]), _fmt(w["first_row"]), w["message"])
        console.print(warn)
    else:
        console.print("no warnings")


def _print_excluded(r: dict) -> None:
    """What was left out and why, and the items that look like fees rather than products."""
    excluded = {k: v for k, v in (r.get("excluded") or {}).items() if v}
    if excluded:
        t = Table(title="excluded or recoded rows")
        t.add_column("what")
        t.add_column("rows", justify="right")
        for k, v in excluded.items():
            t.add_row(k.replace("_", " "), _fmt(v))
        console.print(t)
    fees = r.get("fee_like_items") or []
    if fees:
        t = Table(title="items that look like fees, not products (leave out with --exclude-items)")
        cols = [c for c in ("item_id", "why", "basket_share", "price_spread", "events") if c in fees[0]]
        for c in cols:
            t.add_column(c)
        for f in fees[:15]:
            t.add_row(*(_fmt(f.get(c)) for c in cols))
        console.print(t)


# ---------------------------------------------------------------------------------------
# shopml benchmark ingest


@benchmark_app.command("ingest")
def benchmark_ingest(
    events: int = typer.Option(10_000_000, "--events", help="Number of simulated events."),
    out: Path = typer.Option(None, "--out", help="Write rows to this JSON file (+ .md twin)."),
    threads: int = typer.Option(2, "--threads", help="Polars/torch threads of the measured processes."),
    seed: int = typer.Option(0, "--seed"),
    keep: Path = typer.Option(None, "--keep", help="Keep the generated Parquet file here."),
) -> None:
    """Simulate N events to Parquet, then time ingest+validation and sequence building.

    Generation and ingestion run in fresh child processes (with POLARS_MAX_THREADS set,
    which Polars reads only at import), so each stage's peak RSS is its own."""
    if events < 10:
        raise ConfigError("--events must be at least 10")
    if out is not None:
        check_out(out)
    if keep is not None:
        keep = check_new_file(keep, suffix=".parquet")
    with show_progress():
        res = run_ingest(events, threads=threads, seed=seed, keep=keep)
    extra = {"command": "shopml " + " ".join(sys.argv[1:]), **res.extra}
    if out:
        write_benchmark(out, res.dataset, res.rows, extra)
    else:
        from shopml.cli._common import markdown_table

        console.print(markdown_table(res.rows), markup=False, soft_wrap=True)
