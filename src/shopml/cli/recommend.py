"""``shopml recommend fit|evaluate|predict`` and ``shopml benchmark recommend``.

Data is either a Beauty-format text file (one user per line: ``user item1 item2 ...``,
chronological) or an event file read by :func:`shopml.data.events.read_events`.
Every command calls the Python API; hyper-parameters are the estimators' defaults for every
dataset (no per-dataset tuning).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from shopml.cli._common import JSON_OPTION, app, benchmark_app, console, peak_rss_mb, print_json, write_benchmark
from shopml.errors import ConfigError, DataError

rec_app = typer.Typer(no_args_is_help=True, help="Next-item recommendation: SASRec, Caser and baselines.")
app.add_typer(rec_app, name="recommend")

MODELS = ("sasrec", "caser", "pop", "itemknn", "markov")
NEURAL = ("sasrec", "caser")


def make_model(name: str, *, progress: bool = True, threads: int = 2, epochs: int | None = None,
               max_seconds: float | None = None):
    """A recommender with its default hyper-parameters by name.

    Example:
        >>> type(make_model("pop")).__name__
        'MostPopular'
    """
    from shopml.recommend import baselines, models

    kw = {"progress": progress, "threads": threads, "max_seconds": max_seconds, **({"epochs": epochs} if epochs else {})}
    table = {
        "sasrec": lambda: models.SASRecRecommender(**kw),
        "caser": lambda: models.CaserRecommender(**kw),
        "pop": baselines.MostPopular,
        "itemknn": baselines.ItemKNN,
        "markov": baselines.Markov,
    }
    if name not in table:
        raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return table[name]()


def model_class(kind: str):
    from shopml.recommend import baselines, models

    for cls in (models.SASRecRecommender, models.CaserRecommender, baselines.MostPopular, baselines.ItemKNN,
                baselines.Markov):
        if cls.kind == kind:
            return cls
    raise ConfigError(f"unknown model kind {kind!r}")


def read_sequences(path: Path):
    """Sequences from a Beauty-format ``.txt`` file or an event file (CSV/Parquet/JSONL)."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", path=path)
    if path.suffix.lower() == ".txt":
        from shopml.data.public import read_beauty

        return read_beauty(path)
    from shopml.data.events import read_events
    from shopml.data.sequences import build_sequences

    return build_sequences(read_events(path))


def _split(seqs):
    from shopml.data.sequences import leave_one_out

    train, valid, test = leave_one_out(seqs)
    return train, valid, test, train.append(valid)


def fit_model(name: str, seqs, *, progress: bool, threads: int, epochs: int | None = None,
              max_seconds: float | None = None):
    """Fit on the leave-one-out training part: neural models early-stop on the validation item;
    baselines (nothing to early-stop) see train + validation item. Returns (model, splits)."""
    train, valid, test, train_valid = _split(seqs)
    model = make_model(name, progress=progress, threads=threads, epochs=epochs, max_seconds=max_seconds)
    if name in NEURAL:
        model.fit(train, valid)
    else:
        model.fit(train_valid)
    return model, (train, valid, test, train_valid)


@rec_app.command("fit")
def fit_cmd(
    data: Path = typer.Option(..., "--data", help="Beauty-format .txt or an event file"),
    model: str = typer.Option("sasrec", "--model", help=f"one of {', '.join(MODELS)}"),
    out: Path = typer.Option(..., "--out", help="model folder to write"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="maximum epochs (neural models)"),
    threads: int = typer.Option(2, "--threads"),
    json_out: bool = JSON_OPTION,
):
    """Train a recommender (leave-one-out split, early stopping on validation NDCG@10) and save it."""
    import torch

    torch.set_num_threads(threads)
    seqs = read_sequences(data)
    t0 = time.perf_counter()
    m, (_, _, _, train_valid) = fit_model(model, seqs, progress=not json_out, threads=threads, epochs=epochs)
    m.set_histories(train_valid)  # serve known users with everything but their held-out test item
    m.save(out)
    info = {k: v for k, v in getattr(m, "fit_info_", {}).items() if k != "history"}
    doc = {"model": model, "out": str(out), "seconds": time.perf_counter() - t0, **info}
    print_json(doc) if json_out else console.print(doc)


@rec_app.command("evaluate")
def evaluate_cmd(
    model_dir: Path = typer.Option(..., "--model", help="model folder written by `fit`"),
    data: Path = typer.Option(..., "--data"),
    threads: int = typer.Option(2, "--threads"),
    json_out: bool = JSON_OPTION,
):
    """Leave-one-out test metrics (full ranking, protocols A and B)."""
    import torch

    from shopml.artifacts import read_model_dir
    from shopml.evaluation.protocols import evaluate_model

    torch.set_num_threads(threads)
    kind = read_model_dir(model_dir).kind
    m = model_class(kind).load(model_dir)
    _, _, test, train_valid = _split(read_sequences(data))
    if train_valid.n_items != m.n_items_:
        raise DataError(f"the data has {train_valid.n_items} items, the model {m.n_items_}", path=data)
    res = evaluate_model(m, train_valid, test)
    print_json(res) if json_out else console.print(res)


@rec_app.command("predict")
def predict_cmd(
    model_dir: Path = typer.Option(..., "--model"),
    user: Optional[str] = typer.Option(None, "--user", help="a known (pseudonymized) user id"),
    items: Optional[str] = typer.Option(None, "--items", help="comma-separated raw item ids (a history)"),
    k: int = typer.Option(10, "--k"),
    candidates: Optional[str] = typer.Option(None, "--candidates", help="comma-separated allowed item ids"),
    category: Optional[str] = typer.Option(None, "--category"),
    explain: bool = typer.Option(False, "--explain", help="attach occlusion explanations"),
    json_out: bool = JSON_OPTION,
):
    """Top-k items for a known user or a history given now, optionally explained."""
    from shopml.artifacts import read_model_dir

    if (user is None) == (items is None):
        raise ConfigError("give exactly one of --user or --items")
    m = model_class(read_model_dir(model_dir).kind).load(model_dir)
    hist = user if user is not None else [i for i in items.split(",") if i]
    cands = None if candidates is None else [c for c in candidates.split(",") if c]
    recs = m.recommend([hist], k=k, candidates=cands, category=category, explain=explain)[0]
    if json_out:
        print_json({"recommendations": recs})
        return
    for r in recs:
        why = ", ".join(f"{b['item_id']} ({b['contribution']:+.3f})" for b in r.get("because", [])[:3])
        console.print(f"{r['item_id']}\t{r['score']:.4f}" + (f"\tbecause {why}" if why else ""), markup=False)


@benchmark_app.command("recommend")
def benchmark_cmd(
    data: Path = typer.Option(..., "--data", help="Beauty-format file (or an event file)"),
    out: Path = typer.Option(..., "--out"),
    models: str = typer.Option(",".join(MODELS), "--models"),
    threads: int = typer.Option(2, "--threads"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="cap epochs (for quick runs)"),
    append: bool = typer.Option(False, "--append", help="keep rows of other models already in --out"),
    max_seconds: Optional[float] = typer.Option(None, "--max-seconds", help="training wall-time budget per model"),
):
    """Train and evaluate every model on a leave-one-out split; rows per model and protocol."""
    import torch

    from shopml.evaluation.protocols import evaluate_model

    torch.set_num_threads(threads)
    seqs = read_sequences(data)
    names = [m.strip() for m in models.split(",") if m.strip()]
    rows = _kept_rows(out, names) if append else []
    for name in names:
        t0 = time.perf_counter()
        m, (_, _, test, train_valid) = fit_model(name, seqs, progress=True, threads=threads, epochs=epochs,
                                                 max_seconds=max_seconds)
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        res = evaluate_model(m, train_valid, test)
        eval_s = time.perf_counter() - t1
        info = getattr(m, "fit_info_", {}) or {}
        n_ep = info.get("epochs", 0)
        for proto in ("A", "B"):
            r = res[proto]
            rows.append({"model": name, "protocol": proto, "hr@10": r["hr@10"], "ndcg@10": r["ndcg@10"],
                         "hr@20": r["hr@20"], "ndcg@20": r["ndcg@20"], "mrr@10": r["mrr@10"],
                         "hr@5": r["hr@5"], "ndcg@5": r["ndcg@5"], "epochs": n_ep,
                         "best_epoch": info.get("best_epoch", 0), "valid_ndcg@10": info.get("best_score"),
                         "out_of_time": info.get("out_of_time", False),
                         "train_seconds": train_s, "seconds_to_best": info.get("seconds_to_best", train_s),
                         "seconds_per_epoch": train_s / n_ep if n_ep else None, "eval_seconds": eval_s,
                         "peak_rss_mb": peak_rss_mb()})
        write_benchmark(out, data.name, rows, extra={"threads": threads, "protocol_note": _NOTE})


def _kept_rows(out: Path, names: list[str]) -> list[dict]:
    import json

    if not Path(out).is_file():
        return []
    return [r for r in json.loads(Path(out).read_text()).get("rows", []) if r.get("model") not in names]


_NOTE = ("leave-one-out, full ranking over every item; A excludes history items, B excludes nothing; "
         "neural models train on all but the last 2 items and early-stop on the second-last; baselines "
         "count all but the last item")


def memory_check(n_items: int = 1_000_000, n_users: int = 5000, seed: int = 0) -> dict:
    """Full-ranking evaluation (protocols A and B) of an untrained SASRec over a simulated
    catalogue of ``n_items`` items; returns timings and the process's peak RSS.

    Example (not run, ~1 min): ``memory_check(1_000_000)["peak_rss_mb"] < 4096``
    """
    import torch

    from shopml.evaluation.protocols import auto_batch_size, evaluate
    from shopml.recommend.nets import SASRec

    rng = np.random.default_rng(seed)
    lens = rng.integers(3, 30, n_users)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    items = (rng.zipf(1.2, indptr[-1]) % n_items + 1).astype(np.int64)  # skewed popularity
    targets = (rng.zipf(1.2, n_users) % n_items + 1).astype(np.int64)
    torch.manual_seed(seed)
    net = SASRec(n_items, dim=64, max_len=50).eval()
    t0 = time.perf_counter()
    res = evaluate(lambda h, u: net.score(h[:, -50:]), indptr, items, targets, n_items=n_items)
    return {"n_items": n_items, "n_users": n_users, "batch_users": auto_batch_size(n_items),
            "eval_seconds": time.perf_counter() - t0, "ndcg@10_A": res["A"]["ndcg@10"],
            "peak_rss_mb": peak_rss_mb()}


@benchmark_app.command("recommend-memory")
def memory_cmd(
    out: Path = typer.Option(Path("benchmarks/results/recommend.memory.json"), "--out"),
    n_items: int = typer.Option(1_000_000, "--items"),
    n_users: int = typer.Option(5000, "--users"),
    threads: int = typer.Option(2, "--threads"),
):
    """Peak memory of full-ranking evaluation on a simulated catalogue (target: < 4 GB at 1M items)."""
    import torch

    torch.set_num_threads(threads)
    row = memory_check(n_items, n_users)
    write_benchmark(out, f"simulated {n_items:,}-item catalogue", [{"model": "sasrec (untrained)", **row}])
