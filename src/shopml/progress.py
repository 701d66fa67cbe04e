"""Progress events from the library to whoever shows them (the CLI renders them with Rich).

The library never prints. Training loops call :func:`emit` with small dicts; a caller that
wants to show progress wraps the work in :func:`listen`. :func:`stage` adds fields (the job,
the model, its time budget) to every event emitted inside it, so a loop deep down needs to
know nothing about which job it is in. With no listener, events only go to ``logging`` at
DEBUG level, and epoch ends at INFO.

Event kinds: ``stage`` (a model starts: job, model, budget_s), ``epoch`` (epoch, epochs, loss,
the monitored metric, seconds), ``step`` (step, steps of the current epoch; throttled by the
emitter) and ``done`` (a model finished: seconds, and the result when known).

Example:
    >>> seen = []
    >>> with listen(seen.append), stage(job="recommend", model="sasrec"):
    ...     emit("epoch", epoch=1, epochs=3, loss=2.0)
    >>> [(e["kind"], e["job"], e["model"], e["epoch"]) for e in seen]
    [('stage', 'recommend', 'sasrec', None), ('epoch', 'recommend', 'sasrec', 1)]
"""

from __future__ import annotations

import contextlib
import logging
from contextvars import ContextVar
from typing import Callable, Iterator

__all__ = ["emit", "listen", "stage", "active"]

log = logging.getLogger("shopml.progress")

_sink: ContextVar[Callable[[dict], None] | None] = ContextVar("shopml_progress_sink", default=None)
_fields: ContextVar[dict] = ContextVar("shopml_progress_fields", default={})


def active() -> bool:
    """True when someone listens (a loop may then emit finer-grained ``step`` events)."""
    return _sink.get() is not None


def emit(kind: str, **fields) -> None:
    """Send one event ``{"kind": kind, **stage fields, **fields}`` to the listener, if any."""
    event = {"kind": kind, **_fields.get(), **fields}
    if kind == "epoch":
        log.info("%s %s epoch %s/%s loss %s", event.get("job", "-"), event.get("model", "-"),
                 event.get("epoch"), event.get("epochs"), _fmt(event.get("loss")))
    else:
        log.debug("%s", event)
    sink = _sink.get()
    if sink is not None:
        sink(event)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


@contextlib.contextmanager
def listen(callback: Callable[[dict], None]) -> Iterator[None]:
    """Route every event emitted inside the block to ``callback``."""
    token = _sink.set(callback)
    try:
        yield
    finally:
        _sink.reset(token)


@contextlib.contextmanager
def stage(**fields) -> Iterator[None]:
    """Add ``fields`` to the events emitted inside the block and announce the stage.

    The announcement carries ``epoch=None`` so a display can reset its epoch column."""
    token = _fields.set({**_fields.get(), **fields})
    try:
        emit("stage", epoch=None)
        yield
    finally:
        _fields.reset(token)
