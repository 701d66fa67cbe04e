"""Matplotlib figures for the report, returned as inline ``data:image/png;base64`` URIs.

Figures are built with :class:`matplotlib.figure.Figure` directly, never through pyplot:
no global figure state, no backend chosen for the whole process at import (the report
still renders on a headless server: ``savefig`` to PNG draws with Agg either way).
"""

from __future__ import annotations

import base64
import io

import numpy as np
from matplotlib.figure import Figure

__all__ = ["learning_curves", "calibration", "slate_reliability", "tradeoff", "forecast", "pricing_curves", "bars"]

_BLUE, _ORANGE, _GREEN, _GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#7f7f7f"


def _to_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def learning_curves(curves: dict[str, list[dict]]) -> str | None:
    """One panel per component: training loss and, where present, the monitored
    validation metric per epoch. ``curves`` maps name -> training history rows."""
    curves = {k: [r for r in v if isinstance(r, dict)] for k, v in curves.items() if isinstance(v, list)}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return None
    fig = Figure(figsize=(4.2 * len(curves), 3.2))
    axes = fig.subplots(1, len(curves), squeeze=False)
    for ax, (name, rows) in zip(axes[0], curves.items()):
        epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
        if any("loss" in r for r in rows):
            ax.plot(epochs, [r.get("loss", np.nan) for r in rows], "o-", color=_BLUE, label="train loss")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        metric = next((k for r in rows for k in r if "@" in k or k in ("auc", "val_loss")), None)
        if metric:
            ax2 = ax.twinx()
            ax2.plot(epochs, [r.get(metric, np.nan) for r in rows], "s--", color=_ORANGE, label=f"valid {metric}")
            ax2.set_ylabel(metric, color=_ORANGE)
        ax.set_ylabel("loss", color=_BLUE)
    fig.tight_layout()
    return _to_uri(fig)


def calibration(cal: dict) -> str | None:
    """Reliability diagram: mean predicted vs observed purchase rate per probability bin."""
    pred, obs = cal.get("predicted") or [], cal.get("observed") or []
    if not pred:
        return None
    fig = Figure(figsize=(4.2, 4))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ":", color=_GREY, label="perfect")
    sizes = np.asarray(cal.get("count") or [20] * len(pred), dtype=float)
    ax.scatter(pred, obs, s=20 + 200 * sizes / max(sizes.max(), 1), color=_BLUE, zorder=3, label="model")
    ax.plot(pred, obs, "-", color=_BLUE)
    if cal.get("true"):
        ax.plot(pred, cal["true"], "^--", color=_GREEN, label="true propensity")
    ax.set_xlabel("predicted purchase probability")
    ax.set_ylabel("observed purchase rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return _to_uri(fig)


def slate_reliability(cal: dict) -> str | None:
    """Reliability of recommendation probabilities: they are small (a few percent), so the
    axes follow the data instead of spanning [0, 1]."""
    rel = cal.get("reliability") or {}
    pred, obs = rel.get("predicted") or [], rel.get("observed") or []
    if not pred:
        return None
    fig = Figure(figsize=(4.2, 4))
    ax = fig.subplots()
    top = max(max(pred), max(obs)) * 1.1 or 1.0
    ax.plot([0, top], [0, top], ":", color=_GREY, label="perfect")
    sizes = np.asarray(rel.get("count") or [20] * len(pred), dtype=float)
    ax.scatter(pred, obs, s=20 + 200 * sizes / max(sizes.max(), 1), color=_BLUE, zorder=3, label="calibrated model")
    ax.plot(pred, obs, "-", color=_BLUE)
    ax.set_xlabel("predicted P(next purchase = item), top-10 items")
    ax.set_ylabel("observed rate")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ece, raw = cal.get("ece@10"), cal.get("ece@10_raw")
    if ece is not None:
        ax.set_title(f"ECE {ece:.4f} (before calibration {raw:.4f})", fontsize=9)
    ax.legend(loc="upper left")
    return _to_uri(fig)


def tradeoff(rows: list[dict], k: int = 10) -> str | None:
    """Revenue@k against NDCG@k over the blend grid of the profit objective."""
    rows = [r for r in rows if r.get(f"revenue@{k}") is not None]
    if len(rows) < 2:
        return None
    fig = Figure(figsize=(4.6, 3.6))
    ax = fig.subplots()
    x, y = [r[f"ndcg@{k}"] for r in rows], [r[f"revenue@{k}"] for r in rows]
    ax.plot(x, y, "o-", color=_ORANGE)
    for r, xi, yi in zip(rows, x, y):
        ax.annotate(f"λ={r['blend']:g}", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel(f"NDCG@{k} (history excluded)")
    ax.set_ylabel(f"revenue@{k} per user")
    ax.set_title("relevance vs expected value", fontsize=9)
    return _to_uri(fig)


def forecast(fc: dict) -> str | None:
    """Cumulative repeat purchases per week: actual vs the forecasters."""
    weeks = fc.get("weeks") or []
    if not weeks:
        return None
    fig = Figure(figsize=(6.5, 3.6))
    ax = fig.subplots()
    styles = {"actual": ("-", "black"), "rnn": ("--", _BLUE), "bgnbd": (":", _ORANGE)}
    for name, values in fc.get("series", {}).items():
        ls, color = styles.get(name, ("-.", _GREEN))
        ax.plot(weeks[: len(values)], values, ls, color=color, label=name, linewidth=2)
    if fc.get("calibration_end") is not None:
        ax.axvline(fc["calibration_end"], color=_GREY, linewidth=1)
        ax.text(fc["calibration_end"], ax.get_ylim()[1] * 0.95, " holdout →", color=_GREY, va="top")
    ax.set_xlabel("week")
    ax.set_ylabel("cumulative repeat purchases")
    ax.legend()
    return _to_uri(fig)


def pricing_curves(item: dict) -> str | None:
    """Demand (with interval), elasticity and profit vs price for one item; the chosen
    price is marked on every panel."""
    prices = np.asarray(item.get("prices") or [], dtype=float)
    if prices.size == 0:
        return None
    chosen, current = item.get("chosen_price"), item.get("current_price")
    fig = Figure(figsize=(12, 3.3))
    axes = fig.subplots(1, 3)
    ax = axes[0]
    ax.plot(prices, item["units"], color=_BLUE, label="expected units")
    if item.get("units_low") and item.get("units_high"):
        ax.fill_between(prices, item["units_low"], item["units_high"], color=_BLUE, alpha=0.2, label="interval")
    ax.set_title("demand")
    ax.set_ylabel("units")
    panels = [(axes[1], item.get("elasticity"), "elasticity d log q / d log p", _GREEN)]
    profit = item.get("profit") or item.get("revenue")
    panels.append((axes[2], profit, "profit" if item.get("profit") else "revenue", _ORANGE))
    for ax_, values, title, color in panels:
        if values:
            ax_.plot(prices, values, color=color)
        else:
            ax_.text(0.5, 0.5, "not available", ha="center", transform=ax_.transAxes)
        ax_.set_title(title)
    for ax_ in axes:
        ax_.set_xlabel("price")
        if chosen is not None:
            ax_.axvline(chosen, color="red", linestyle="--", label=f"chosen {chosen:.2f}")
        if current is not None:
            ax_.axvline(current, color=_GREY, linestyle=":", label=f"current {current:.2f}")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _to_uri(fig)


def bars(rows: list[dict], metric: str, title: str) -> str | None:
    """Horizontal bars of ``metric`` per model (the model vs its baselines)."""
    rows = [r for r in rows if isinstance(r.get(metric), (int, float))]
    if not rows:
        return None
    fig = Figure(figsize=(5, 0.45 * len(rows) + 1))
    ax = fig.subplots()
    names = [str(r.get("model")) + (f" ({r['protocol']})" if r.get("protocol") else "") for r in rows]
    ax.barh(names, [r[metric] for r in rows], color=_BLUE)
    ax.set_xlabel(metric)
    ax.set_title(title)
    ax.invert_yaxis()
    return _to_uri(fig)
