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
    """Write the report of ``run`` to ``out`` (default ``<run>/report.html``), atomically;
    return the path.

    ``out`` may not be a folder, an existing file other than an .html page, or a path
    inside a run folder other than this run's own ``report.html`` (ConfigError): a report
    never overwrites someone's file nor changes a run.
    """
    from shopml.runs import Run

    run_path = run.path if isinstance(run, Run) else Path(run)
    default = run_path / "report.html"
    out = Path(out).expanduser() if out is not None else default
    _check_report_target(out, default)
    atomic_write_text(out, render_report(run))
    return out


def _is_run(folder: Path) -> bool:
    import json

    try:
        return json.loads((folder / "manifest.json").read_text()).get("format") == "shopml-run"
    except (OSError, ValueError, AttributeError):
        return False


def _check_report_target(out: Path, default: Path) -> None:
    from shopml.errors import ConfigError

    real = out.resolve()
    if out.is_dir():
        raise ConfigError(f"{out}: is a folder; name the report's .html file")
    if out.exists() and out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"{out}: exists and is not an .html file; the report will not overwrite it")
    if real == default.resolve():
        return
    for folder in real.parents:
        if folder.is_file():
            raise ConfigError(f"{out}: {folder} is a file, not a folder")
        if _is_run(folder):
            raise ConfigError(f"{out}: lies inside the run folder {folder}; "
                              "a run holds only its own report.html (the default)")
