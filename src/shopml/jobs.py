"""The contract between :func:`shopml.pipeline.fit_all` and each job's fit glue.

Each job (``recommend/job.py``, ``sessions/job.py``, ``customers/job.py``,
``pricing/job.py``) is one function ``fit(events, ctx) -> JobResult``. It trains its model and
its baselines twice on the log's own time line (:class:`Periods`):

* on the *fit* period, scored on the *validation* window that follows it: this picks the
  model the run serves (a baseline may win);
* on the whole *training* period (everything before the test window), scored on the *test*
  window: these are the numbers the run reports. The served model is the winner's second fit.

Nothing in the test window is ever used to choose anything.

Example:
    >>> import datetime as dt
    >>> t = [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=d) for d in range(100)]
    >>> p = Periods.from_times(min(t), max(t))
    >>> (p.test_from - p.start).days, (p.test_from - p.valid_from).days
    (89, 9)
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from shopml.errors import ConfigError

__all__ = ["Periods", "JobContext", "JobResult", "Skip", "pick_winner"]


class Skip(Exception):
    """A job the data does not support; the message says why."""


@dataclass(frozen=True)
class Periods:
    """The log's time line: fit [start, valid_from), validation [valid_from, test_from),
    test [test_from, end]. Times are aware UTC datetimes."""

    start: dt.datetime
    valid_from: dt.datetime
    test_from: dt.datetime
    end: dt.datetime

    @classmethod
    def from_times(cls, start: dt.datetime, end: dt.datetime, test_from: dt.datetime | None = None,
                   test_share: float = 0.1) -> "Periods":
        """Without ``test_from`` the last ``test_share`` of the span is the test window. The
        validation window is as long as the test window, at most a quarter of the training span."""
        if test_from is None:
            test_from = end - (end - start) * test_share
        if not start < test_from <= end:
            raise ConfigError(f"--test-from {test_from.date()} must fall inside the log's time span "
                              f"({start.date()} to {end.date()})")
        train_span, test_span = test_from - start, end - test_from
        valid = min(max(test_span, dt.timedelta(days=1)), train_span / 4)
        return cls(start, test_from - valid, test_from, end)

    def weeks(self, a: dt.datetime, b: dt.datetime) -> int:
        """Whole weeks (rounded up) between two times, at least 1."""
        return max(-(-(b - a).days // 7), 1)

    def to_dict(self) -> dict:
        return {k: getattr(self, k).isoformat() for k in ("start", "valid_from", "test_from", "end")}


@dataclass
class JobContext:
    """What a job gets besides the events: sizes, the time line, its time budget and a log."""

    cfg: Any
    periods: Periods
    budget_s: float | None = None
    log: Callable[[str], None] = lambda msg: None
    extra: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def remaining(self, share: float = 1.0) -> float | None:
        """Seconds of the job's budget left, times ``share`` (None: no budget)."""
        if self.budget_s is None:
            return None
        return max(self.budget_s - (time.perf_counter() - self.started), 1.0) * share


@dataclass
class JobResult:
    """A job's output: components to save, metric rows, report material, curves, the winner."""

    components: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, list] = field(default_factory=dict)
    winner: dict | None = None


def pick_winner(valid_scores: dict[str, float], metric: str, *, higher_is_better: bool = True,
                neural: str | None = None) -> dict:
    """The best model on the validation window, and by how much it beat the runner-up
    (and, when ``neural`` is given and lost, how far the neural model was behind).

    Example:
        >>> pick_winner({"sasrec": .05, "pop": .02}, "ndcg@10")["model"]
        'sasrec'
        >>> pick_winner({"rnn": 1.2, "bgnbd": 1.0}, "mae", higher_is_better=False, neural="rnn")["neural_won"]
        False
    """
    scored = {k: v for k, v in valid_scores.items() if v is not None}
    if not scored:
        raise Skip("no model could be scored on the validation window")
    order = sorted(scored, key=lambda k: scored[k], reverse=higher_is_better)
    best = order[0]
    out = {"model": best, "metric": metric, "valid": scored[best], "higher_is_better": higher_is_better,
           "valid_scores": scored}
    if len(order) > 1:
        out["runner_up"], out["margin"] = order[1], abs(scored[best] - scored[order[1]])
    if neural is not None:
        out["neural_won"] = best == neural
    return out
