"""The HTML report of a run: one self-contained file (inline CSS and PNG plots, no URLs).

Sections: the run, data quality, metrics against baselines, learning curves, sample
recommendations with the history items that drove them, session purchase-probability
calibration, the customer-forecast curve, and demand / elasticity / profit curves with
the chosen price marked. A section whose component the run lacks says so.

Example:
    >>> import tempfile, pathlib
    >>> from shopml.runs import save_run
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = save_run(d / "run", components={}, key=bytes(32))
    >>> out = write_report(d / "run", d / "report.html")
    >>> "This run has no recommendation model" in out.read_text()
    True
"""

from __future__ import annotations

from pathlib import Path

from shopml.artifacts import atomic_write_text

__all__ = ["write_report", "render_report"]


def render_report(run) -> str:
    """The report page for a run folder (path) or a loaded :class:`shopml.runs.Run`."""
    from shopml.report.html import render_html
    from shopml.runs import Run, load_run

    if not isinstance(run, Run):
        run = load_run(run, components=False)
    return render_html(run.manifest, run.extras)


def write_report(run, out=None) -> Path:
    """Write the report of ``run`` to ``out`` (default ``<run>/report.html``); return the path."""
    from shopml.runs import Run

    run_path = run.path if isinstance(run, Run) else Path(run)
    out = Path(out) if out is not None else run_path / "report.html"
    atomic_write_text(out, render_report(run))
    return out
