"""The HTML report: self-contained, every section present or explained, plots embedded."""

from __future__ import annotations

import re

import pytest

from shopml.report import render_report, write_report
from shopml.runs import save_run


@pytest.fixture
def full_run(tmp_path):
    return save_run(tmp_path / "run", components={}, **synthetic_report_material(), key=bytes(32))


def synthetic_report_material():
    """Manifest metrics and extras shaped like shopml.pipeline's output, with fake numbers."""
    prices = [1.0 + 0.1 * i for i in range(20)]
    units = [100 * p ** -2.0 for p in prices]
    return dict(
        metrics={
            "recommend": [{"model": "sasrec", "ndcg@10": 0.31}, {"model": "pop", "ndcg@10": 0.05}],
            "sessions": [{"model": "gru", "hr@20": 0.5, "auc": 0.8}, {"model": "pop", "hr@20": 0.1}],
        },
        skipped=[],
        extras={
            "quality": {"n_users": 10, "n_items": 5, "events_by_type": {"view": 40, "purchase": 3},
                        "warnings": [{"message": "2 duplicate rows <script>"}]},
            "learning_curves": {"sasrec": [{"epoch": e, "loss": 5 - e, "ndcg@10": 0.1 * e} for e in range(1, 5)]},
            "recommend": {"model": "sasrec", "samples": [
                {"user": "ab" * 16, "history": ["i1", "i2"], "recommendations": [
                    {"item_id": "i3", "score": 2.0, "because": [{"item_id": "i2", "contribution": 1.5}]}]}]},
            "sessions": {"auc": 0.8, "calibration": {"predicted": [0.1, 0.5, 0.9], "observed": [0.12, 0.45, 0.8],
                                                     "count": [50, 30, 20]}},
            "customers": {"weeks": list(range(1, 11)), "calibration_end": 5,
                          "series": {"actual": list(range(10)), "rnn": list(range(10)), "bgnbd": list(range(10))}},
            "pricing": {"items": [{"item_id": "i1", "prices": prices, "units": units,
                                   "units_low": [u * 0.9 for u in units], "units_high": [u * 1.1 for u in units],
                                   "elasticity": [-2.0] * 20, "profit": [(p - 0.5) * u for p, u in zip(prices, units)],
                                   "chosen_price": 1.0, "current_price": 1.5, "unit_cost": 0.5}]},
        },
    )


def test_report_is_self_contained_with_all_sections(full_run, tmp_path):
    page = write_report(full_run, tmp_path / "r.html").read_text()
    for heading in ["Data quality", "Metrics against baselines", "Learning curves", "Sample recommendations",
                    "Session purchase probability", "Customer forecast", "Demand, elasticity and profit"]:
        assert f">{heading}</h2>" in page
    assert "This run has no" not in page
    assert not re.search(r"(src|href)=['\"](https?:|//)", page)  # nothing fetched from outside
    assert "<script>" not in page  # data is escaped
    imgs = re.findall(r"<img [^>]*src='data:image/png;base64,", page)
    assert len(imgs) >= 6  # 2 metric bars, learning, calibration, forecast, pricing


def test_absent_components_are_explained(tmp_path):
    run = save_run(tmp_path / "run", components={}, key=bytes(32),
                   skipped=[{"job": "pricing", "reason": "prices never vary"}])
    page = render_report(run)
    assert "This run has no pricing model (prices never vary)" in page
    assert "This run has no recommendation model" in page


def test_default_report_lives_in_the_run_and_the_run_stays_valid(full_run):
    from shopml.runs import load_run

    out = write_report(full_run)
    assert out == full_run / "report.html" and "<html" in out.read_text().lower()
    write_report(full_run, full_run / "report.html")  # the same place, named: fine, replaced
    assert load_run(full_run, key=bytes(32)).verified
    assert not [p.name for p in full_run.iterdir() if p.name.endswith(".tmp")]  # written atomically


@pytest.mark.parametrize("target, fragment", [
    (lambda run, d: run / "extras.json", "not an .html file"),
    (lambda run, d: run / "models" / "page.html", "inside the run folder"),
    (lambda run, d: run / "other.html", "inside the run folder"),
    (lambda run, d: d / "other_run" / "report.html", "inside the run folder"),
    (lambda run, d: d / "notes.txt", "not an .html file"),
    (lambda run, d: d, "is a folder"),
    (lambda run, d: d / "notes.txt" / "r.html", "is a file, not a folder"),
])
def test_report_never_overwrites_a_file_or_writes_into_a_run(full_run, tmp_path, target, fragment):
    from shopml.errors import ConfigError

    save_run(tmp_path / "other_run", components={}, key=bytes(32))
    (tmp_path / "notes.txt").write_text("mine")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=fragment):
        write_report(full_run, target(full_run, tmp_path))
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_existing_html_file_outside_runs_is_replaced(full_run, tmp_path):
    (tmp_path / "old.html").write_text("<p>old</p>")
    assert "Data quality" in write_report(full_run, tmp_path / "old.html").read_text()


def test_plots_leave_matplotlib_global_state_alone():
    """The report's plots use the Figure API: importing and drawing them never loads pyplot
    (its global figures and process-wide backend). Checked in a fresh interpreter, as other
    tests may load pyplot."""
    import subprocess
    import sys

    code = ("import sys; from shopml.report import plots; "
            "assert plots.bars([{'model': 'a', 'm': 1.0}], 'm', 't').startswith('data:image/png;base64,'); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
