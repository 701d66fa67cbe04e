"""``shopml sessions fit|evaluate|predict`` and ``shopml benchmark sessions``.

Session files use the SR-GNN Yoochoose text format: training = one session per line
(item ids separated by spaces); test = ``prefix<TAB>target`` per line.
"""

from __future__ import annotations

import warnings

import time
from pathlib import Path

import typer

from shopml.benchmarks.sessions import check_models, run_sessions
from shopml.benchmarks.sessions import gru_params as _gru_params
from shopml.cli._common import (
    JSON_OPTION,
    app,
    benchmark_app,
    check_input,
    check_out,
    console,
    print_json,
    show_progress,
    write_benchmark,
)

sessions_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False, help="Session next-click models.")
app.add_typer(sessions_app, name="sessions")

MODEL_OPT = typer.Option("gru4rec", "--model", help="gru4rec, vsknn, markov or pop.")
THREADS_OPT = typer.Option(2, "--threads", help="torch threads (this machine has 2 cores).")


@sessions_app.command("fit")
def fit_cmd(
    train: Path = typer.Option(..., "--train", help="Sessions file, one session per line."),
    out: Path = typer.Option(..., "--out", help="Model folder to write."),
    model: str = MODEL_OPT,
    epochs: int | None = typer.Option(None, "--epochs", help="GRU epochs (default: 10, the benchmark setting)."),
    max_seconds: float = typer.Option(None, "--max-seconds", "--time-budget", help="Stop training after this many seconds."),
    hidden: int = typer.Option(None, "--dim", "--hidden", help="GRU size (= item embedding size)"),
    item_features: Path = typer.Option(None, "--item-features",
                                       help="item side features (JSON, Parquet or CSV) for GRU4Rec"),
    threads: int = THREADS_OPT,
    json_out: bool = JSON_OPTION,
):
    """Fit a next-click model on a sessions file and save it."""
    import torch

    from shopml.data.features import read_item_features
    from shopml.data.public import read_sessions
    from shopml.sessions.estimator import session_model

    from shopml.targets import check_model_target

    for path in (train, item_features):
        if path is not None:
            check_input(path)
    check_model_target(out, inputs=[train, item_features])
    check_models([model])
    torch.set_num_threads(threads)
    feats = read_item_features(item_features) if item_features is not None else None
    sessions = read_sessions(train)
    params = _gru_params(epochs, max_seconds, hidden) if model == "gru4rec" else {}
    t0 = time.perf_counter()
    m = session_model(model, **params).fit(sessions, **({"item_features": feats} if feats and model == "gru4rec" else {}))
    info = {"model": model, "out": str(out), "sessions": len(sessions), "items": m.n_items_,
            "train_seconds": round(time.perf_counter() - t0, 1),
            **({"item_features": f"{m._n_tokens()} tokens, {feats.coverage(m.item_ids_):.0%} of the items"} if feats and model == "gru4rec" else {})}  # fmt: skip
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

    from shopml.data.public import read_prefix_targets
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
    with warnings.catch_warnings():  # an unknown item is no error here: the session falls back
        warnings.simplefilter("ignore")
        recs = [{"items": [r["item_id"] for r in rec], "scores": [round(r["score"], 6) for r in rec],
                 "fallback": rec[0].get("fallback") if rec else None} for rec in m.recommend(sessions, k=k)]
    if json_out:
        print_json([{"session": s, **r} for s, r in zip(sessions, recs)])
        return
    for s, r in zip(sessions, recs):
        flag = f"  [fallback: {r['fallback']}]" if r["fallback"] else ""
        console.print(f"{' '.join(s) or '(empty)'} -> {' '.join(r['items'])}{flag}", markup=False)


@benchmark_app.command("sessions")
def bench_sessions(
    train: Path = typer.Option(..., "--train", help="Sessions file (one session per line)."),
    test: Path = typer.Option(..., "--test", help="prefix<TAB>target file."),
    out: Path = typer.Option(..., "--out", help="JSON file to write (a .md twin is written beside it)."),
    threads: int = THREADS_OPT,
    models: str = typer.Option("gru4rec,vsknn,markov,pop", "--models"),
    epochs: int | None = typer.Option(None, "--epochs", help="GRU epochs (default: 10, the benchmark setting)."),
    max_seconds: float = typer.Option(None, "--max-seconds", "--time-budget", help="GRU training seconds at most."),
    intent: bool = typer.Option(True, "--intent/--no-intent", help="Add the simulator purchase-intent row."),
):
    """Next-click Recall@20/MRR@20 of each model on a Yoochoose-format split (+ intent AUC)."""
    names = [m.strip() for m in models.split(",") if m.strip()]
    check_input(train)
    check_input(test)
    check_out(out, inputs=[train, test])
    check_models(names)
    import torch

    torch.set_num_threads(threads)
    with show_progress():
        res = run_sessions(train, test, names, threads=threads, epochs=epochs, max_seconds=max_seconds, intent=intent)
    write_benchmark(out, res.dataset, res.rows, res.extra)
