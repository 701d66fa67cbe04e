"""Assemble the report: one self-contained HTML page (inline CSS and PNGs, no URLs)."""

from __future__ import annotations

import html
import json
from typing import Any

from shopml.report import plots

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{border-bottom:3px solid #1f77b4;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:14px}td,th{border:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f6fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.absent{color:#8a6d3b;background:#fcf8e3;padding:.6em;border-left:4px solid #f0ad4e}
.skip{color:#666}img{max-width:100%;border:1px solid #eee;margin:.4em 0}code{background:#f5f5f5;padding:1px 3px}
.best{font-weight:bold;color:#1a7f37}nav a{margin-right:1em}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""  # a cell with no value is blank, not "None" or "nan"
    if isinstance(v, bool):
        return "yes" if v else ""
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, (list, dict)):
        text = json.dumps(v, default=str)
        return _e(text if len(text) < 300 else text[:300] + " …")
    return _e(v)


def table(rows: list[dict], highlight: str | None = None) -> str:
    """Rows of dicts as an HTML table; the best value of ``highlight`` (max) is bold."""
    if not rows:
        return "<p class='skip'>(no rows)</p>"
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    best = None
    if highlight:
        vals = [r[highlight] for r in rows if isinstance(r.get(highlight), (int, float))]
        best = max(vals) if vals else None
    out = ["<table><tr>" + "".join(f"<th>{_e(c)}</th>" for c in cols) + "</tr>"]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cls = "num" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            if c == highlight and best is not None and v == best:
                cls += " best"
            cells.append(f"<td class='{cls.strip()}'>{_fmt(v)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join(out) + "</table>"


def kv_table(d: dict) -> str:
    """A flat two-column table of a (possibly nested) dict; nested dicts are flattened
    with dotted keys so every statistic stays visible."""
    rows = []

    def walk(prefix, obj):
        if isinstance(obj, dict) and obj and len(prefix.split(".")) < 3:
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            rows.append(f"<tr><th>{_e(prefix)}</th><td>{_fmt(obj)}</td></tr>")

    walk("", d)
    return "<table>" + "".join(rows) + "</table>"


def _img(uri: str | None, alt: str) -> str:
    if not uri:
        return f"<p class='skip'>no data for the {_e(alt)} plot</p>"
    return f"<img alt='{_e(alt)}' src='{uri}'>"


def _absent(what: str, reason: str | None = None) -> str:
    why = f" ({_e(reason)})" if reason else ""
    return f"<p class='absent'>This run has no {_e(what)}{why}.</p>"


def _section(anchor: str, title: str, body: str) -> str:
    return f"<section id='{anchor}'><h2>{_e(title)}</h2>\n{body}\n</section>"


def render_html(manifest: dict, extras: dict) -> str:
    """The whole report page for a run's manifest and fit-time extras."""
    skipped = {s.get("job"): s.get("reason") for s in manifest.get("skipped", [])}
    sections = [
        ("overview", "Run", _overview(manifest)),
        ("quality", "Data quality", _quality(extras.get("quality"))),
        ("excluded", "What was left out, and why", _excluded(extras.get("quality"))),
        ("winners", "What each job serves", _winners(extras.get("winners") or {}, extras.get("periods"))),
        ("metrics", "Metrics against baselines", _metrics(manifest.get("metrics", {}), extras.get("periods"))),
        ("learning", "Learning curves", _learning(extras.get("learning_curves", {}))),
        ("recommend", "Sample recommendations", _recommend(extras.get("recommend"), skipped.get("recommend"))),
        ("sessions", "Session purchase probability", _sessions(extras.get("sessions"), skipped.get("sessions"))),
        ("customers", "Customer forecast", _customers(extras.get("customers"), skipped.get("customers"))),
        ("pricing", "Demand, elasticity and profit", _pricing(extras.get("pricing"), skipped.get("pricing"))),
    ]
    nav = "<nav>" + "".join(f"<a href='#{a}'>{_e(t)}</a>" for a, t, _ in sections) + "</nav>"
    body = "\n".join(_section(a, t, b) for a, t, b in sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>shopml report</title><style>{_CSS}</style></head><body>"
        f"<h1>shopml report</h1>{nav}\n{body}\n</body></html>\n"
    )


def _overview(m: dict) -> str:
    comps = ", ".join(f"<code>{_e(c['name'])}</code>" for c in m.get("components", [])) or "none"
    info = {
        "created_at": m.get("created_at"),
        "components": None,
        "data": m.get("data", {}),
        "params": m.get("params", {}),
        "versions": m.get("versions", {}),
        "key_fingerprint": m.get("key_fingerprint"),
    }
    info.pop("components")
    skipped = "".join(f"<li><b>{_e(s.get('job'))}</b>: {_e(s.get('reason'))}</li>" for s in m.get("skipped", []))
    skipped_html = f"<p>Skipped jobs:</p><ul>{skipped}</ul>" if skipped else "<p>No job was skipped.</p>"
    return f"<p>Components: {comps}</p>{skipped_html}{kv_table(info)}"


def _quality(q: dict | None) -> str:
    if not q:
        return _absent("data-quality report")
    warnings = q.get("warnings") if isinstance(q, dict) else None
    rest = {k: v for k, v in q.items() if k != "warnings"}
    out = kv_table(rest)
    if warnings:
        items = "".join(f"<li>{_fmt(w.get('message', w) if isinstance(w, dict) else w)}</li>" for w in warnings)
        out += f"<h3>Warnings</h3><ul>{items}</ul>"
    else:
        out += "<p>No data-quality warnings.</p>"
    return out


_EXCLUDED_WHY = {
    "guest_lines": "rows without a user (guest checkouts): their session stands in as the user for the "
                   "session models; they are left out of the user-level jobs",
    "guest_lines_dropped": "guest rows dropped (no session to stand in for the user)",
    "returns": "returns and cancellations: never a training signal, netted out of customer and demand data",
    "zero_quantity": "rows with a quantity of 0",
    "bad_prices": "rows with a price of 0, negative, infinite or NaN",
    "excluded_items": "rows of the items left out with --exclude-items",
    "duplicates": "rows repeating an earlier row (kept, flagged)",
    "dropped_events": "events whose type maps to nothing (e.g. remove_from_cart)",
}


def _excluded(q: dict | None) -> str:
    """Counts of what was dropped or recoded, with the reason, and the fee-like items."""
    if not q:
        return "<p class='skip'>No data-quality report was recorded for this run.</p>"
    counts = {k: v for k, v in (q.get("excluded") or {}).items() if v}
    rows = [{"what": k.replace("_", " "), "rows": v, "why": _EXCLUDED_WHY.get(k, "")} for k, v in counts.items()]
    out = table(rows) if rows else "<p>Nothing was excluded.</p>"
    fees = q.get("fee_like_items") or []
    if fees:
        out += ("<h3>Items that look like fees rather than products</h3><p>Leave them out with "
                "<code>--exclude-items CODE,...</code>.</p>" + table(fees[:20]))
    return out


def _winners(winners: dict, periods: dict | None) -> str:
    """Per job: the served model, the validation metric behind the choice and the margin."""
    if not winners:
        return "<p class='skip'>No model selection was recorded for this run.</p>"
    rows = [{"job": job, "served": w.get("served", w.get("model")), "validation winner": w.get("model"),
             "validation metric": w.get("metric"),
             "validation score": w.get("valid"), "runner-up": w.get("runner_up"), "margin": w.get("margin"),
             "neural model won": w.get("neural_won")} for job, w in winners.items()]
    when = ""
    if periods:
        when = (f"<p>Chosen on the validation window {_e(periods.get('valid_from', '')[:10])} to "
                f"{_e(periods.get('test_from', '')[:10])}; never on the test window.</p>")
    return when + table(rows)


def _metrics(metrics: dict, periods: dict | None = None) -> str:
    if not metrics:
        return _absent("evaluation metrics")
    out = []
    if periods:
        out.append(f"<p>Test window: from {_e(periods.get('test_from', '')[:10])} to "
                   f"{_e(periods.get('end', '')[:10])}; models trained on the log before it. "
                   "<code>winner</code> marks the model the run serves.</p>")
    for job, rows in metrics.items():
        if not isinstance(rows, list):
            rows = [rows] if isinstance(rows, dict) else []
        key = next((k for k in ("ndcg@10", "hr@20", "auc", "mae", "regret") if any(k in r for r in rows)), None)
        out.append(f"<h3>{_e(job)}</h3>{table(rows, highlight=key if key not in ('mae', 'regret') else None)}")
        if key:
            out.append(_img(plots.bars(rows, key, f"{job}: {key}"), f"{job} {key}"))
    return "\n".join(out)


def _learning(curves: dict) -> str:
    if not curves:
        return _absent("training histories")
    return _img(plots.learning_curves(curves), "learning curves")


def _recommend(rec: dict | None, reason) -> str:
    if not rec:
        return _absent("recommendation model", reason)
    out = [f"<p>Model: <code>{_e(rec.get('model'))}</code>. {_e(rec.get('explanation', ''))}</p>"]
    for s in rec.get("samples", []):
        hist = ", ".join(_e(h) for h in s.get("history", [])[-10:])
        rows = [
            {
                "rank": i + 1,
                "item": r["item_id"],
                "score": r.get("score"),
                "driven by (history item: score drop)": ", ".join(
                    f"{b['item_id']}: {b.get('contribution', b.get('weight', 0)):+.3f}" for b in r.get("because", [])
                ),
            }
            for i, r in enumerate(s.get("recommendations", []))
        ]
        out.append(f"<h3>user {_e(s.get('user', '')[:12])}…</h3><p>Last history items: {hist}</p>{table(rows)}")
    out.append(_shop_value(rec))
    return "\n".join(out)


def _shop_value(rec: dict) -> str:
    """Calibration of the served model's probabilities and its revenue trade-off (test window)."""
    from shopml.report import plots

    out = []
    cal = rec.get("calibration")
    if cal:
        out.append("<h3>Calibration of P(next purchase = item)</h3><p>Top-10 items of every test user, "
                   "against one item drawn from what the user bought in the test window.</p>")
        out.append(_img(plots.slate_reliability(cal), "recommendation reliability"))
    curve = rec.get("value_curve")
    if curve:
        out.append("<h3>Relevance against revenue</h3><p>Ranking by log P + λ·log(unit profit), "
                   f"unit cost assumed at price × (1 − {curve[-1].get('assumed_margin', '')}) where unknown; "
                   "revenue@10 is what a user spent in the test window on the slate's items.</p>")
        out.append(_img(plots.tradeoff(curve), "relevance-revenue trade-off"))
        out.append(table(curve))
    return "\n".join(out)


def _sessions(ses: dict | None, reason) -> str:
    if not ses:
        return _absent("session model", reason)
    cal = ses.get("calibration") or {}
    stats = {k: v for k, v in ses.items() if k not in ("calibration", "samples")}
    out = [kv_table(stats) if stats else "", _img(plots.calibration(cal), "purchase-probability calibration")]
    if cal.get("predicted"):
        out.append(table([{"predicted": p, "observed": o, "sessions": n}
                          for p, o, n in zip(cal["predicted"], cal["observed"], cal.get("count", []))]))
    if ses.get("samples"):
        out.append("<h3>Sample session predictions</h3>" + table(ses["samples"]))
    return "\n".join(out)


def _customers(cus: dict | None, reason) -> str:
    if not cus:
        return _absent("customer forecast", reason)
    stats = {k: v for k, v in cus.items() if k not in ("weeks", "series", "calibration_end")}
    return _img(plots.forecast(cus), "customer forecast") + (kv_table(stats) if stats else "")


def _pricing(pr: dict | None, reason) -> str:
    if not pr:
        return _absent("pricing model", reason)
    out = []
    if pr.get("elasticities"):
        out.append("<h3>Elasticity estimates</h3>" + table(pr["elasticities"]))
    for item in pr.get("items", []):
        facts = {k: item.get(k) for k in ("chosen_price", "current_price", "unit_cost", "expected_units",
                                          "profit_at_chosen", "binding") if item.get(k) is not None}
        out.append(f"<h3>item {_e(item.get('item_id'))}</h3>{kv_table(facts)}")
        out.append(_img(plots.pricing_curves(item), f"pricing curves {item.get('item_id')}"))
    return "\n".join(out) or _absent("pricing curves", reason)
