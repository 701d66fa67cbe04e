"""``shopml fit`` (a shop's log in, one run out) and ``shopml benchmark fit`` (the same,
scored on the test months, as JSON rows plus Markdown).

Every path and option is checked before the log is read; the run folder is checked again by
the save itself (:func:`shopml.runs.check_run_target`).
"""

from __future__ import annotations

import datetime as dt
import glob
import sys
from enum import Enum
from pathlib import Path

import typer

from shopml.benchmarks.fit import run_fit
from shopml.cli import inputs as opt
from shopml.cli._common import JSON_OPTION, app, benchmark_app, check_out, console, print_json, write_benchmark
from shopml.errors import ConfigError

__all__ = ["fit_cmd", "bench_fit", "bench_refresh", "fit_log", "print_fit", "plain"]


def plain(message: str) -> None:
    """A library log line, printed as is (``[recommend]`` is text, not Rich markup)."""
    console.print(message, markup=False, highlight=False, soft_wrap=True)


class Preset(str, Enum):
    auto = "auto"
    full = "full"
    demo = "demo"
    tiny = "tiny"


JOBS_HELP = "Jobs to fit, comma-separated: recommend,sessions,customers,pricing (default: all)."


def parse_jobs(value: str | None) -> tuple[str, ...]:
    """``"recommend,customers"`` -> a tuple of job names, checked."""
    from shopml.pipeline import JOBS

    if not value:
        return JOBS
    jobs = tuple(j.strip() for j in value.split(",") if j.strip())
    bad = [j for j in jobs if j not in JOBS]
    if bad or not jobs:
        raise ConfigError(f"--jobs: unknown job(s) {', '.join(bad) or '(none)'}; choose from {', '.join(JOBS)}")
    return tuple(dict.fromkeys(jobs))


def parse_date(value: str | None, flag: str) -> dt.datetime | None:
    """An ISO date or datetime (UTC when it has no zone), or None."""
    if value is None:
        return None
    try:
        t = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{flag} must be a date like 2011-08-01, got {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def fit_log(events: str, out: Path, load: dict, *, test_from, max_minutes: float | None, jobs, preset: str,
            show: bool, log, warm_start=None):
    """Load the log, report its quality, fit every job into ``out``; returns (result, quality)."""
    from shopml import progress
    from shopml.cli.render import FitProgress
    from shopml.data.events import load_events
    from shopml.data.quality import quality_report
    from shopml.pipeline import FitConfig, fit_all

    with console.status(f"reading {events} ...") if show else _null():
        df, warnings = load_events(events, **load)
        quality = quality_report(df, warnings)
    log(f"read {df.height:,} events: {quality['users']:,} users, {quality['items']:,} items")
    cfg = FitConfig.preset(preset)
    if preset == "auto":
        cfg = cfg.for_data(df)
    with FitProgress(enabled=show) as bar, progress.listen(bar):
        res = fit_all(df, out, config=cfg, jobs=jobs, quality=quality, test_from=test_from,
                      max_minutes=max_minutes, log=log, warm_start=warm_start)
    return res, quality


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _check_minutes(max_minutes: float) -> float | None:
    if max_minutes != max_minutes or max_minutes < 0:  # NaN or negative
        raise ConfigError(f"--max-minutes must be >= 0 (0 = no budget), got {max_minutes}")
    return None if max_minutes == 0 else max_minutes


@app.command("fit")
def fit_cmd(
    events: str = typer.Option(..., "--events", help=opt.EVENTS_HELP),
    out: Path = typer.Option(..., "--out", help="Run folder to write: a new path, or an earlier shopml run."),
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
    test_from: str = typer.Option(None, "--test-from", help="Train on the log before DATE, score every job "
                                  "on the events from DATE on (default: the last 10% of the time span)."),
    max_minutes: float = typer.Option(15.0, "--max-minutes", help="Wall-time budget split across the jobs "
                                      "(0 = none)."),
    jobs: str = typer.Option(None, "--jobs", help=JOBS_HELP),
    preset: Preset = typer.Option(Preset.auto, "--preset", help="Model sizes: auto (from the data's size), "
                                  "full, demo (fast) or tiny."),
    warm_start: Path = typer.Option(None, "--warm-start", help="An earlier run to continue: its recommender "
                                    "and customer models train a few epochs on the new events (give the whole "
                                    "log; events after that run's training cut are new) instead of a refit."),
    json_out: bool = JSON_OPTION,
):
    """Train every job the log supports (recommend, sessions, customers, pricing) against its
    baselines, pick each job's winner on a validation window, score on the test window, and
    save one run."""
    from shopml.runs import check_run_target

    from shopml.pipeline import load_previous

    load = opt.checked_load_kwargs(events, locals())
    check_run_target(out, inputs=_inputs(events, exclude_items))
    cut, budget, job_list = parse_date(test_from, "--test-from"), _check_minutes(max_minutes), parse_jobs(jobs)
    previous = None if warm_start is None else load_previous(warm_start)
    from shopml.report import write_report

    res, _ = fit_log(events, out, load, test_from=cut, max_minutes=budget, jobs=job_list,
                     preset=preset.value, show=not json_out, log=(lambda m: None) if json_out else plain,
                     warm_start=previous)
    report = write_report(out)  # RUN/report.html: the run and its report, in one step
    if json_out:
        print_json({"run": str(out), "report": str(report), "metrics": res.metrics, "winners": res.winners,
                    "skipped": res.skipped, "seconds": res.seconds, "periods": res.periods})
    else:
        print_fit(res)
        console.print(f"\nrun saved to [bold]{out}[/], report to [bold]{report}[/]")


def _inputs(events: str, exclude_items) -> list:
    """The user's input paths, which a run folder must never replace."""
    if events.startswith(("postgresql://", "postgres://")):
        paths = []
    elif any(c in events for c in "*?["):
        paths = [Path(p) for p in glob.glob(events)]
    else:
        paths = [Path(events)]
    if exclude_items and Path(exclude_items).is_file():
        paths.append(Path(exclude_items))
    return paths


def print_fit(res) -> None:
    """Per job: the models on the test window (the served one marked), then skipped jobs."""
    from shopml.cli._common import markdown_table

    for job, rows in res.metrics.items():
        w = res.winners.get(job, {})
        served = w.get("served", w.get("model", "?"))
        picked = "" if served == w.get("model") else (
            f"; {w['note']}" if w.get("note") else f"; validation picked {w.get('model')}, which it cannot serve")
        console.print(f"\n[bold]{job}[/]: serving [bold]{served}[/] (validation {w.get('metric', '')} "
                      f"{_f(w.get('valid'))}; runner-up {w.get('runner_up', '-')} by {_f(w.get('margin'))}{picked})")
        # a job whose served model is not the validation winner (pricing) marks its rows itself
        shown = [{k: v for k, v in r.items() if k not in ("winner", "served")}
                 | {"served": "yes" if r.get("served", r.get("winner")) else ""} for r in rows]
        console.print(markdown_table(shown), markup=False, soft_wrap=True)
    for s in res.skipped:
        colour = "red" if s.get("status") == "failed" else "yellow"
        console.print(f"[{colour}]{s.get('status', 'skipped')} {s['job']}[/]: {s['reason']}", soft_wrap=True)


def _f(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "-"


@benchmark_app.command("fit")
def bench_fit(
    events: str = typer.Option(..., "--events", help=opt.EVENTS_HELP),
    out: Path = typer.Option(..., "--out", help="JSON file to write (+ .md twin)."),
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
    test_from: str = typer.Option(None, "--test-from", help="First day of the test window."),
    max_minutes: float = typer.Option(15.0, "--max-minutes", help="Wall-time budget (0 = none)."),
    jobs: str = typer.Option(None, "--jobs", help=JOBS_HELP),
    preset: Preset = typer.Option(Preset.auto, "--preset"),
    run: Path = typer.Option(None, "--run", help="Keep the fitted run here (default: a temporary folder)."),
):
    """``shopml fit`` on any log, scored on its test window: one row per job x model."""
    from shopml import progress
    from shopml.cli.render import FitProgress
    from shopml.runs import check_run_target

    load = opt.checked_load_kwargs(events, locals())
    check_out(out, inputs=_inputs(events, exclude_items))
    if run is not None:
        check_run_target(run, inputs=_inputs(events, exclude_items))
    cut, budget, job_list = parse_date(test_from, "--test-from"), _check_minutes(max_minutes), parse_jobs(jobs)
    with FitProgress(enabled=sys.stderr.isatty()) as bar, progress.listen(bar):
        res = run_fit(events, load=load, test_from=cut, max_minutes=budget, jobs=job_list, preset=preset.value,
                      run=run, log=plain)
    extra = {"seconds": res.extra.pop("seconds"), "command": "shopml " + " ".join(sys.argv[1:]), **res.extra}
    write_benchmark(out, res.dataset, res.rows, extra)


@benchmark_app.command("refresh")
def bench_refresh(
    events: str = typer.Option(..., "--events", help=opt.EVENTS_HELP),
    split_at: str = typer.Option(..., "--split-at", help="The previous run is fitted on the log before DATE."),
    out: Path = typer.Option(..., "--out", help="JSON file to write (+ .md twin)."),
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
    test_from: str = typer.Option(None, "--test-from", help="First day of the test window (default: the fit's "
                                  "rule on the whole log)."),
    max_minutes: float = typer.Option(15.0, "--max-minutes", help="Wall-time budget of each fit (0 = none)."),
    jobs: str = typer.Option("recommend,customers", "--jobs", help=JOBS_HELP),
    preset: Preset = typer.Option(Preset.auto, "--preset"),
):
    """A warm start against a full refit: fit before --split-at, then both on the log up to
    the test window, both scored on it; rows per mode x job x model."""
    from shopml import progress
    from shopml.benchmarks.refresh import run_refresh
    from shopml.cli.render import FitProgress

    load = opt.checked_load_kwargs(events, locals())
    check_out(out, inputs=_inputs(events, exclude_items))
    split = parse_date(split_at, "--split-at")
    cut, budget, job_list = parse_date(test_from, "--test-from"), _check_minutes(max_minutes), parse_jobs(jobs)
    with FitProgress(enabled=sys.stderr.isatty()) as bar, progress.listen(bar):
        res = run_refresh(events, split, load=load, test_from=cut, jobs=job_list, preset=preset.value,
                          max_minutes=budget, log=plain)
    write_benchmark(out, res.dataset, res.rows, {"command": "shopml " + " ".join(sys.argv[1:]), **res.extra})


@app.command("evaluate")
def evaluate_cmd(
    run: Path = typer.Argument(..., help="Run folder written by shopml fit."),
    events: str = typer.Option(..., "--events", help=opt.EVENTS_HELP),
    from_date: str = typer.Option(..., "--from", help="Score the events from DATE on; earlier ones are history."),
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
):
    """Score a saved run on newer events, as fit scores its test window."""
    from shopml.cli._common import markdown_table
    from shopml.data.events import read_events
    from shopml.evaluate import evaluate_run

    if not (run / "manifest.json").is_file():
        raise ConfigError(f"{run}: not a shopml run folder (no manifest.json)")
    load = opt.checked_load_kwargs(events, locals())
    cut = parse_date(from_date, "--from")
    rows = evaluate_run(run, read_events(events, **load), cut)
    if json_out:
        print_json({"run": str(run), "from": cut.isoformat(), "metrics": rows})
        return
    for job, r in rows.items():
        console.print(f"\n[bold]{job}[/]")
        console.print(markdown_table(r), markup=False, soft_wrap=True)
