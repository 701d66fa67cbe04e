"""Rich rendering of the library's progress events (:mod:`shopml.progress`) and fit tables.

One line per model in training: job, model, epoch x/y, the last loss and validation metric,
elapsed time and an ETA. The ETA is the sooner of "epochs left at the current pace" and
"the model's time budget left", since either ends training. Stops quietly when stderr is not
a terminal (Rich then prints only the finished lines).
"""

from __future__ import annotations

import time

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from shopml.cli._common import console_err

__all__ = ["FitProgress"]


class FitProgress:
    """A callback for :func:`shopml.progress.listen` that draws a Rich progress display.

    Example:
        >>> with FitProgress(enabled=False) as show:
        ...     show({"kind": "stage", "job": "recommend", "model": "sasrec"})
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.task = None
        self.state: dict = {}

    def __enter__(self):
        if self.enabled:
            self.bar = Progress(TextColumn("{task.fields[label]}"), BarColumn(bar_width=24),
                                TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                TextColumn("ETA {task.fields[eta]}"), console=console_err, transient=False)
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()
        return False

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        kind = event.get("kind")
        if kind == "stage":
            self._new_task(event)
        elif kind in ("epoch", "step") and self.task is not None:
            self._update(event)

    def _new_task(self, event: dict) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=self.bar.tasks[-1].total or 1)
        label = f"{event.get('job', '')}: {event.get('model', '')}"
        self.state = {"t0": time.perf_counter(), "budget": event.get("budget_s"), "epochs": None}
        self.task = self.bar.add_task("", total=None, label=label, info="", eta="-")

    def _update(self, event: dict) -> None:
        st = self.state
        elapsed = time.perf_counter() - st["t0"]
        if event["kind"] == "epoch":
            st["epochs"], st["epoch"] = event.get("epochs"), event.get("epoch")
            parts = [f"epoch {event.get('epoch')}/{event.get('epochs')}"]
            if isinstance(event.get("loss"), float):
                parts.append(f"loss {event['loss']:.4f}")
            if isinstance(event.get("metric"), float):
                parts.append(f"{event.get('monitor')} {event['metric']:.4f}")
            st["info"] = "  ".join(parts)
            self.bar.update(self.task, total=st["epochs"], completed=st["epoch"], info=st["info"],
                            eta=self._eta(elapsed, st["epoch"], st["epochs"]))
        else:  # a step inside an epoch: finer progress, same epoch text
            done = (st.get("epoch") or 0) + event["step"] / max(event["steps"], 1)
            self.bar.update(self.task, total=st.get("epochs") or None, completed=done,
                            info=st.get("info", "epoch 1"), eta=self._eta(elapsed, done, st.get("epochs")))

    def _eta(self, elapsed: float, done: float, total) -> str:
        left = []
        if total and done:
            left.append(elapsed / done * (total - done))
        if self.state.get("budget"):
            left.append(max(self.state["budget"] - elapsed, 0.0))
        return f"{min(left):.0f}s" if left else "-"
