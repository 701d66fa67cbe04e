"""Fit every job an event log supports on its own time line, and save one run folder.

:func:`fit_all` only orchestrates; each job's glue lives beside the job
(:mod:`shopml.recommend.job`, :mod:`shopml.sessions.job`,
:mod:`shopml.customers.job`, :mod:`shopml.pricing.job`; the contract is
:mod:`shopml.jobs`). It

* cuts the log into fit, validation and test periods (``test_from``; by default the test
  window holds the last 10% of the time span and at least 10% of the events): models and baselines are chosen on the validation window and scored on the test
  window, and the run serves each job's winner, which may be a baseline;
* splits a wall-time budget (``max_minutes``) over the jobs, unspent time rolling over;
* isolates the jobs: one that the data does not support is *skipped* with the reason, one
  that fails is reported with its error, and everything the others trained is still saved;
* checks each component can be saved before the run is written, so one bad value never
  throws away what was trained.

Example:
    >>> from shopml.data.simulate import simulate_shop           # doctest: +SKIP
    >>> shop = simulate_shop(n_users=200, n_items=50)             # doctest: +SKIP
    >>> res = fit_all(shop.events, "runs/tiny", config=FitConfig.preset("tiny"))  # doctest: +SKIP
    >>> sorted(res.metrics)                                        # doctest: +SKIP
    ['customers', 'pricing', 'recommend', 'sessions']
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from shopml.errors import ConfigError, DataError, ShopMLError
from shopml.jobs import JobContext, Periods, Skip
from shopml.runs import data_fingerprint, save_run

__all__ = ["FitConfig", "FitResult", "fit_all", "load_previous", "JOBS", "PRESETS"]

log_ = logging.getLogger("shopml.pipeline")

JOBS = ("recommend", "sessions", "customers", "pricing")
#: share of the time budget per job (renormalized over the jobs asked for)
_SHARES = {"recommend": 0.45, "sessions": 0.25, "customers": 0.15, "pricing": 0.15}
PRESETS = ("auto", "full", "demo", "tiny")


@dataclass(frozen=True)
class FitConfig:
    """Sizes and budgets of the models ``fit_all`` trains (small typed config, named presets)."""

    rec_dim: int = 64
    rec_max_len: int = 50
    rec_epochs: int = 200
    rec_patience: int = 10
    session_hidden: int = 100
    session_epochs: int = 10
    session_sample: int = 2048
    customer_epochs: int = 40
    customer_samples: int = 200
    pricing_epochs: int = 200
    # A warm start: 3 epochs at the fit's own learning rate on the users with new events plus
    # a quarter as many others replayed. Chosen on a validation time line of Online Retail
    # (benchmarks/tune_refresh.py, nothing from the test months read): 102% of the refit's
    # NDCG@10 for 6% of its seconds; a full replay or 0.3x the rate gave 93-98%.
    refresh_epochs: int = 3
    refresh_replay: float = 0.25
    refresh_lr_scale: float = 1.0
    threads: int = 2
    seed: int = 0
    progress: bool = True
    n_samples: int = 3

    @classmethod
    def preset(cls, name: str) -> "FitConfig":
        """``full`` (the defaults), ``demo`` (the whole demo in well under 3 minutes on 2
        cores) or ``tiny`` (tests). ``auto`` is ``full``; :meth:`for_data` then sizes it."""
        presets = {
            "auto": cls(),
            "full": cls(),
            "demo": cls(rec_dim=48, rec_epochs=30, rec_patience=4, session_hidden=64, session_epochs=5,
                        session_sample=256, customer_epochs=15, customer_samples=64, pricing_epochs=100),
            "tiny": cls(rec_dim=16, rec_max_len=20, rec_epochs=3, rec_patience=2, session_hidden=16,
                        session_epochs=1, session_sample=32, customer_epochs=2, customer_samples=8,
                        pricing_epochs=10, refresh_epochs=1, progress=False),
        }
        if name not in presets:
            raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        return presets[name]

    def for_data(self, events: pl.DataFrame) -> "FitConfig":
        """Model sizes from the data's size: small catalogues and few users get smaller
        models (they overfit and waste the budget otherwise); the epoch caps stay, the time
        budget and early stopping end training."""
        n_items, n_users = events["item_id"].n_unique(), events["user_id"].n_unique()
        dim = 32 if n_items < 500 or n_users < 500 else 48 if n_items < 5000 else 64
        sample = min(2048, max(64, n_items // 2))
        return replace(self, rec_dim=dim, session_hidden=max(dim, 64), session_sample=sample)


@dataclass
class FitResult:
    """What :func:`fit_all` did: the run folder, metrics per job, skipped or failed jobs,
    timings, and the served model of each job with the validation scores behind the choice."""

    path: Path
    metrics: dict[str, list[dict]]
    skipped: list[dict]
    seconds: dict[str, float]
    extras: dict[str, Any] = field(default_factory=dict)
    winners: dict[str, dict] = field(default_factory=dict)
    periods: dict[str, str] = field(default_factory=dict)


def _fitters() -> dict[str, Callable]:
    from shopml.customers.job import fit_customers
    from shopml.sessions.job import fit_sessions
    from shopml.pricing.job import fit_pricing
    from shopml.recommend.job import fit_recommend

    return {"recommend": fit_recommend, "sessions": fit_sessions, "customers": fit_customers, "pricing": fit_pricing}


def _refreshers() -> dict[str, Callable]:
    """The jobs a warm start continues from the previous run; the others are fitted afresh
    (sessions and pricing: their models are quick to refit and choose on the new data)."""
    from shopml.customers.job import refresh_customers
    from shopml.recommend.warm import refresh_recommend

    return {"recommend": refresh_recommend, "customers": refresh_customers}


def _fitter(job: str, previous) -> Callable:
    """A warm start's refresher where the previous run has the job's model, else the full fit."""
    if previous is not None and job in _refreshers() and previous.get(job) is not None:
        return _refreshers()[job]
    return _fitters()[job]


def load_previous(path):
    """The run a warm start continues (verified, with its models), or a one-line error."""
    from shopml.runs import load_run

    path = Path(path)
    if not (path / "manifest.json").is_file():
        raise ConfigError(f"--warm-start {path}: not a shopml run folder (no manifest.json)")
    run = load_run(path)
    if "periods" not in run.manifest.get("params", {}):
        raise ConfigError(f"--warm-start {path}: the run was not written by shopml fit (no time line)")
    return run


def periods_of(events: pl.DataFrame, test_from=None) -> Periods:
    """The time line of ``events``; ``test_from`` is a date, datetime or ISO string."""
    import datetime as dt

    if events.height == 0:
        raise DataError("no events to fit on")
    start, end = events["timestamp"].min(), events["timestamp"].max()
    if isinstance(test_from, str):
        try:
            test_from = dt.datetime.fromisoformat(test_from)
        except ValueError:
            raise ConfigError(f"--test-from must be a date like 2011-08-01, got {test_from!r}") from None
    if isinstance(test_from, dt.date) and not isinstance(test_from, dt.datetime):
        test_from = dt.datetime(test_from.year, test_from.month, test_from.day)
    if test_from is not None and test_from.tzinfo is None:
        test_from = test_from.replace(tzinfo=dt.timezone.utc)
    if test_from is None:
        # The test window holds at least the last 10% of the span AND at least 10% of the
        # events: a log whose activity thins out at its end (a fading tail) still gets a test
        # window with users in it. On a steady log both rules give about the same cut.
        ts = events["timestamp"].sort()
        test_from = min(end - (end - start) * 0.1, ts[int(len(ts) * 0.9)])
    return Periods.from_times(start, end, test_from)


def fit_all(events: pl.DataFrame, out, *, config: FitConfig | None = None, jobs=JOBS,
            quality: dict | None = None, test_from=None, max_minutes: float | None = None,
            price_panel: pl.DataFrame | None = None, price_truth=None,
            session_truth: pl.DataFrame | None = None, log: Callable[[str], None] | None = None,
            warm_start=None) -> FitResult:
    """Train every job in ``jobs`` the (canonical, pseudonymized) ``events`` support, then
    save the run to ``out`` atomically. ``quality`` is the data-quality report to embed.

    Pricing uses ``price_panel`` (item × store × week rows: price, log_units, optional
    controls, in the layout of :func:`shopml.data.market.simulate_market`) when given, else
    the weekly panel implied by the events; ``price_truth`` (true elasticities) adds the
    estimation error to the metrics; ``session_truth`` (session_id, propensity) adds the true
    propensity's AUC beside the intent model's.

    ``warm_start`` (a run folder, or a loaded run) continues that run's recommender and
    customer models on ``events`` (the log as it is now) instead of choosing and training
    them again (:mod:`shopml.recommend.warm`); item ids keep their rows and new items and users
    are added."""
    from shopml.training import torch_threads

    cfg = config or FitConfig()
    log = log or (lambda msg: None)
    unknown = [j for j in jobs if j not in JOBS]
    if unknown:
        raise ConfigError(f"unknown job(s) {', '.join(unknown)}; choose from {', '.join(JOBS)}")
    periods = periods_of(events, test_from)
    log(f"time line: fit {periods.start.date()} .. {periods.valid_from.date()}, validation .. "
        f"{periods.test_from.date()}, test .. {periods.end.date()}")
    previous = load_previous(warm_start) if isinstance(warm_start, (str, Path)) else warm_start
    if previous is not None:
        log(f"warm start from {previous.path} (trained on events before "
            f"{previous.manifest['params']['periods']['test_from'][:10]})")
    extra = {"price_panel": price_panel, "price_truth": price_truth, "session_truth": session_truth,
             "previous": previous}
    budget = None if max_minutes is None else float(max_minutes) * 60.0
    t_start = time.perf_counter()
    done: dict[str, Any] = {}
    skipped: list[dict] = []
    with torch_threads(cfg.threads):
        for i, job in enumerate(jobs):
            job_budget = _job_budget(budget, t_start, jobs[i:])
            ctx = JobContext(cfg=cfg, periods=periods, budget_s=job_budget, log=log, extra=extra)
            outcome = _run_job(job, _fitter(job, previous), events, ctx, log)
            (skipped.append(outcome) if isinstance(outcome, dict) else done.__setitem__(job, outcome))
    warm = None if previous is None else {"from": str(previous.path), "fingerprint": previous.fingerprint}
    return _save(out, events, cfg, jobs, periods, done, skipped, quality, log, warm)


def _job_budget(budget: float | None, t_start: float, remaining_jobs) -> float | None:
    """This job's share of the time that is left (unspent time rolls over to later jobs)."""
    if budget is None:
        return None
    left = max(budget - (time.perf_counter() - t_start), 0.0)
    shares = [_SHARES[j] for j in remaining_jobs]
    return max(left * shares[0] / sum(shares), 5.0)


def _run_job(job: str, fitter: Callable, events: pl.DataFrame, ctx: JobContext, log):
    """The job's (result, seconds), or a ``{"job", "reason", "status"}`` row when it was
    skipped (the data does not support it) or failed (an error, reported in one line)."""
    t0 = time.perf_counter()
    budget = "" if ctx.budget_s is None else f" (budget {ctx.budget_s:.0f} s)"
    log(f"[{job}] starting{budget}")
    try:
        res = fitter(events, ctx)
    except Skip as why:
        log(f"[{job}] skipped: {why}")
        return {"job": job, "reason": str(why), "status": "skipped"}
    except Exception as exc:  # noqa: BLE001 - one job's failure must not lose the others' models
        log_.debug("job %s failed", job, exc_info=True)
        reason = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        log(f"[{job}] {reason}")
        return {"job": job, "reason": reason, "status": "failed"}
    seconds = round(time.perf_counter() - t0, 1)
    w = res.winner or {}
    log(f"[{job}] done in {seconds} s; serving {w.get('served', w.get('model', '?'))} "
        f"(validation winner {w.get('model', '?')}, {w.get('metric', '')} {_num(w.get('valid'))})")
    return res, seconds


def _num(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "-"


def _saveable(components: dict, skipped: list, log) -> dict:
    """The components that save cleanly (tried in a scratch folder first): one that cannot
    (say, a non-finite weight) is dropped and reported instead of failing the whole run."""
    ok = {}
    scratch = Path(tempfile.mkdtemp(prefix="shopml-check-"))
    try:
        for name, est in components.items():
            try:
                est.save(scratch / name)
                ok[name] = est
            except (ShopMLError, ValueError, OSError, TypeError) as exc:
                skipped.append({"job": name, "reason": f"failed to save: {exc}", "status": "failed"})
                log(f"[{name}] not saved: {exc}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ok


def _save(out, events, cfg, jobs, periods, done, skipped, quality, log, warm=None) -> FitResult:
    components, metrics, extras, curves, seconds, winners = {}, {}, {}, {}, {}, {}
    for job, (res, secs) in done.items():
        components.update(res.components)
        metrics[job], extras[job], seconds[job] = res.metrics, res.extras, secs
        curves.update(res.curves)
        if res.winner:
            winners[job] = res.winner
    components = _saveable(components, skipped, log)
    if "recommend" in components and "pricing" in components:
        extras.setdefault("recommend", {})["prices"] = proposed_prices(components["recommend"], components["pricing"],
                                                                       log)
    extras.update(quality=quality or _quality(events), learning_curves=curves, fit_seconds=seconds,
                  winners=winners, periods=periods.to_dict())
    rec = components.get("recommend")
    save_run(out, components=components,
             params={"config": cfg.__dict__, "jobs": list(jobs), "periods": periods.to_dict(), "winners": winners,
                     **({"warm_start": warm} if warm else {})},
             metrics=metrics, data=data_fingerprint(events), skipped=skipped, extras=extras,
             items=list(getattr(rec, "item_ids_", [])), users=list(getattr(rec, "user_ids_", [])))
    return FitResult(Path(out), metrics, skipped, seconds, extras, winners, periods.to_dict())


def proposed_prices(rec, book, log=lambda msg: None) -> dict:
    """Give the recommender the pricing job's proposed price of every item the price book
    covers (the book's default rules), so the revenue and profit objectives and the price rule
    use the price the shop is about to charge; other items keep their latest price in the log.
    Returns how many prices came from where.

    Example:
        >>> class Book:
        ...     item_ids_ = ["b", "zzz"]
        ...     def optimize_item(self, item_id): return {"price": 9.5}
        >>> from shopml.recommend.baselines import MostPopular
        >>> from shopml.recommend.base import sequences_from_lists
        >>> m = MostPopular().fit(sequences_from_lists([["a", "b"]]), item_prices={"a": 1.0, "b": 2.0})
        >>> proposed_prices(m, Book()), m.item_prices_.tolist()
        ({'from_pricing_job': 1, 'from_log': 1}, [nan, 1.0, 9.5])
    """
    index = getattr(rec, "_item_index", {})
    n = 0
    for item in getattr(book, "item_ids_", []):
        if item in index:
            try:
                rec.item_prices_[index[item]] = float(book.optimize_item(item)["price"])
                n += 1
            except ShopMLError as e:  # no feasible price: the item keeps its latest price
                log(f"[recommend] no proposed price for item {item}: {e}")
    known = int(np.isfinite(rec.item_prices_[1:]).sum())
    log(f"[recommend] item prices: {n} proposed by the pricing job, {known - n} latest in the log")
    return {"from_pricing_job": n, "from_log": known - n}


def _quality(events: pl.DataFrame) -> dict:
    from shopml.data.quality import quality_report
    from shopml.data.validate import validate_events

    return quality_report(events, validate_events(events))
