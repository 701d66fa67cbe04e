"""``shopml sessions fit|evaluate|predict`` and ``shopml benchmark sessions``.

Session files use the SR-GNN Yoochoose text format: training = one session per line
(item ids separated by spaces); test = ``prefix<TAB>target`` per line.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from shopml.cli._common import JSON_OPTION, app, benchmark_app, console, peak_rss_mb, print_json, write_benchmark

sessions_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, help="Session next-click models.")
app.add_typer(sessions_app, name="sessions")

MODEL_OPT = typer.Option("gru4rec", "--model", help="gru4rec, vsknn, markov or pop.")
THREADS_OPT = typer.Option(2, "--threads", help="torch threads (this machine has 2 cores).")


def _gru_params(epochs: int | None, time_budget: float | None, hidden: int | None) -> dict:
    from shopml.sessions.estimator import DEFAULTS_YOOCHOOSE

    p = dict(DEFAULTS_YOOCHOOSE, time_budget=time_budget)
    if epochs:
        p["epochs"] = epochs
    if hidden:
        p["hidden"] = hidden
    return p


@sessions_app.command("fit")
def fit_cmd(
    train: Path = typer.Option(..., "--train", help="Sessions file, one session per line."),
    out: Path = typer.Option(..., "--out", help="Model folder to write."),
    model: str = MODEL_OPT,
    epochs: int | None = typer.Option(None, "--epochs", help="GRU epochs (default: 10, the benchmark setting)."),
    time_budget: float = typer.Option(None, "--time-budget", help="Stop training after this many seconds."),
    hidden: int = typer.Option(None, "--hidden"),
    threads: int = THREADS_OPT,
    json_out: bool = JSON_OPTION,
):
    """Fit a next-click model on a sessions file and save it."""
    import torch

    from shopml.sessions.data import read_sessions
    from shopml.sessions.estimator import session_model

    torch.set_num_threads(threads)
    sessions = read_sessions(train)
    params = _gru_params(epochs, time_budget, hidden) if model == "gru4rec" else {}
    t0 = time.perf_counter()
    m = session_model(model, **params).fit(sessions)
    info = {"model": model, "out": str(out), "sessions": len(sessions), "items": m.items_.n_items,
            "train_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    m.save(out)
    print_json(info) if json_out else console.print(info)


@sessions_app.command("evaluate")
def evaluate_cmd(
    model: Path = typer.Option(..., "--model", help="Model folder from `sessions fit`."),
    test: Path = typer.Option(..., "--test", help="prefix<TAB>target file."),
    k: int = typer.Option(20, "--k"),
    threads: int = THREADS_OPT,
    json_out: bool = JSON_OPTION,
):
    """Recall@k and MRR@k of a saved model, every item ranked."""
    import torch

    from shopml.sessions.data import read_prefix_targets
    from shopml.sessions.estimator import load_session_model

    torch.set_num_threads(threads)
    m = load_session_model(model)
    prefixes, targets = read_prefix_targets(test)
    res = m.evaluate(prefixes, targets, k=k)
    print_json(res) if json_out else console.print(res)


@sessions_app.command("predict")
def predict_cmd(
    model: Path = typer.Option(..., "--model", help="Model folder from `sessions fit`."),
    session: list[str] = typer.Option(None, "--session", help="A session: item ids separated by spaces (repeatable)."),
    k: int = typer.Option(20, "--k"),
    json_out: bool = JSON_OPTION,
):
    """Top-k next items for one or more sessions (popularity, flagged, when nothing is known)."""
    from shopml.sessions.estimator import load_session_model

    m = load_session_model(model)
    sessions = [s.split() for s in (session or [""])]
    recs = m.recommend(sessions, k=k)
    if json_out:
        print_json([{"session": s, **r} for s, r in zip(sessions, recs)])
        return
    for s, r in zip(sessions, recs):
        flag = f"  [fallback: {r['fallback']}]" if r["fallback"] else ""
        console.print(f"{' '.join(s) or '(empty)'} -> {' '.join(r['items'])}{flag}", markup=False)


def _bench_row(name: str, model, train, prefixes, targets) -> dict:
    t0 = time.perf_counter()
    model.fit(train)
    train_s = time.perf_counter() - t0
    res = model.evaluate(prefixes, targets, k=20)
    row = {"model": name, "recall@20": round(res["recall@20"], 4), "mrr@20": round(res["mrr@20"], 4),
           "train_seconds": round(train_s, 1), "eval_seconds": res["eval_seconds"],
           "peak_rss_mb": round(peak_rss_mb(), 0)}  # fmt: skip
    if hasattr(model, "history_"):
        row["epochs"] = len(model.history_)
    console.print(row, markup=False)
    return row


@benchmark_app.command("sessions")
def bench_sessions(
    train: Path = typer.Option(..., "--train", help="Sessions file (one session per line)."),
    test: Path = typer.Option(..., "--test", help="prefix<TAB>target file."),
    out: Path = typer.Option(..., "--out", help="JSON file to write (a .md twin is written beside it)."),
    threads: int = THREADS_OPT,
    models: str = typer.Option("gru4rec,vsknn,markov,pop", "--models"),
    epochs: int | None = typer.Option(None, "--epochs", help="GRU epochs (default: 10, the benchmark setting)."),
    time_budget: float = typer.Option(None, "--time-budget", help="GRU training seconds at most."),
    intent: bool = typer.Option(True, "--intent/--no-intent", help="Add the simulator purchase-intent row."),
):
    """Next-click Recall@20/MRR@20 of each model on a Yoochoose-format split (+ intent AUC)."""
    import torch

    from shopml.sessions.baselines import VSKNN_YOOCHOOSE
    from shopml.sessions.estimator import session_model

    torch.set_num_threads(threads)
    tr, prefixes, targets = _read_split(train, test)
    rows = []
    for name in [m.strip() for m in models.split(",") if m.strip()]:
        params = {"gru4rec": _gru_params(epochs, time_budget, None), "vsknn": VSKNN_YOOCHOOSE}.get(name, {})
        rows.append(_bench_row(name, session_model(name, **params), tr, prefixes, targets))
    if intent:
        rows.append(_intent_row())

    extra = {"train": str(train), "test": str(test), "threads": threads, "n_test": len(targets),
             "gru4rec_params": _gru_params(epochs, time_budget, None) if "gru4rec" in models else None,
             "vsknn_params": VSKNN_YOOCHOOSE if "vsknn" in models else None,
             "protocol": "every training item ranked; ties pessimistic; targets unseen in training are misses"}  # fmt: skip
    write_benchmark(out, f"sessions: {train.parent.name}", rows, extra=extra)


def _read_split(train: Path, test: Path):
    """The split through data-core's reader, as raw-id lists (the estimators' input).
    Unknown test targets become "" (never a training item: a miss)."""
    import numpy as np

    from shopml.data.public import read_session_split

    split = read_session_split(train, test)
    ids = np.array([""] + split.item_map.to_list(), dtype=object)

    def lists(seqs):
        return [a.tolist() for a in np.split(ids[seqs.items], seqs.indptr[1:-1])]

    return lists(split.train_sessions), lists(split.test_prefixes), ids[split.test_targets].tolist()


def _intent_row() -> dict:
    """Purchase-intent AUC on the simulator beside the AUC of its true propensity."""
    from shopml.intent.estimator import simulator_intent_benchmark

    t0 = time.perf_counter()
    res = simulator_intent_benchmark()
    row = {"model": "intent-gru (simulator)", "auc": round(res["auc"], 4), "oracle_auc": round(res["oracle_auc"], 4),
           "train_seconds": round(res["train_seconds"], 1), "eval_seconds": round(time.perf_counter() - t0 - res["train_seconds"], 1),
           "peak_rss_mb": round(peak_rss_mb(), 0)}  # fmt: skip
    console.print(row, markup=False)
    return row
