"""``shopml recommend fit|evaluate|predict`` and ``shopml benchmark recommend``.

Data is either a Beauty-format text file (one user per line: ``user item1 item2 ...``,
chronological) or an event file read by :func:`shopml.data.events.read_events`.
Every command calls the Python API; the leave-one-out split, the model table and the
benchmark itself are :mod:`shopml.benchmarks.recommend` (hyper-parameters are the estimators'
defaults for every dataset, no per-dataset tuning).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from shopml.benchmarks.recommend import (
    MODELS,
    check_models,
    fit_model,
    kept_rows,
    read_sequences,
    run_memory,
    row_name,
    run_recommend,
)
from shopml.benchmarks.recommend import split as _split
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
from shopml.errors import ConfigError, DataError

rec_app = typer.Typer(no_args_is_help=True, help="Next-item recommendation: SASRec, Caser and baselines.")
app.add_typer(rec_app, name="recommend")


def model_class(kind: str):
    from shopml.recommend import baselines, models

    for cls in (models.SASRecRecommender, models.CaserRecommender, baselines.MostPopular, baselines.ItemKNN,
                baselines.Markov):
        if cls.kind == kind:
            return cls
    raise ConfigError(f"unknown model kind {kind!r}")


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

    from shopml.targets import check_model_target

    check_input(data)
    check_model_target(out, inputs=[data])
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
    exclude: Optional[list[str]] = typer.Option(None, "--exclude", help="never recommend this item (repeatable)"),
    price_min: Optional[float] = typer.Option(None, "--price-min", help="only items priced at least this"),
    price_max: Optional[float] = typer.Option(None, "--price-max", help="only items priced at most this"),
    max_per_category: Optional[int] = typer.Option(None, "--max-per-category", help="diversity cap per category"),
    pin: Optional[list[str]] = typer.Option(None, "--pin", help="show this item first when eligible (repeatable)"),
    boost: Optional[list[str]] = typer.Option(None, "--boost", help="ITEM=DELTA added to its score (repeatable)"),
    new_slots: Optional[int] = typer.Option(None, "--new-slots",
                                            help="slots kept for the best items with no interactions yet"),
    objective: str = typer.Option("relevance", "--objective", help="relevance, revenue or profit"),
    blend: float = typer.Option(1.0, "--blend", help="0 = relevance, 1 = expected value (revenue/profit)"),
    assumed_margin: Optional[float] = typer.Option(None, "--assumed-margin",
                                                   help="margin where an item's unit cost is unknown (profit)"),
    order: str = typer.Option("relevance", "--order",
                              help="order inside a revenue or profit slate: relevance (likeliest first) or value"),
    json_out: bool = JSON_OPTION,
):
    """Top-k items for a known user or a history given now, optionally explained, under the
    shop's rules (exclusions, price range, per-category cap, pinned and boosted items, slots
    kept for new items)."""
    from shopml.artifacts import read_model_dir
    from shopml.recommend.rules import Rules
    from shopml.recommend.value import OBJECTIVES, ORDERS

    if (user is None) == (items is None):
        raise ConfigError("give exactly one of --user or --items")
    rules = Rules.from_options(exclude=exclude, price_min=price_min, price_max=price_max,
                               max_per_category=max_per_category, pinned=pin, boost=boost, new_slots=new_slots)
    if objective not in OBJECTIVES or not 0 <= blend <= 1 or not (assumed_margin is None or 0 <= assumed_margin < 1):
        raise ConfigError(f"--objective must be one of {', '.join(OBJECTIVES)}, --blend in [0, 1] and "
                          "--assumed-margin in [0, 1)")
    if order not in ORDERS:
        raise ConfigError(f"--order must be one of {', '.join(ORDERS)}, not {order!r}")
    m = model_class(read_model_dir(model_dir).kind).load(model_dir)
    hist = user if user is not None else [i for i in items.split(",") if i]
    cands = None if candidates is None else [c for c in candidates.split(",") if c]
    recs = m.recommend([hist], k=k, candidates=cands, category=category, explain=explain, rules=rules,
                       objective=objective, blend=blend, assumed_margin=assumed_margin,
                       order=order)[0]
    if json_out:
        print_json({"recommendations": recs, "objective": objective, "assumed_margin": assumed_margin,
                    "order": None if objective == "relevance" else order})
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
    item_features: Optional[Path] = typer.Option(None, "--item-features",
                                                 help="item side features (JSON, Parquet or CSV) for the neural models"),
    device: str = typer.Option("cpu", "--device", help="train the neural models on 'cpu' or 'cuda'"),
):
    """Train and evaluate every model on a leave-one-out split; rows per model and protocol."""
    from shopml.training import check_device

    names = [m.strip() for m in models.split(",") if m.strip()]
    check_device(device)
    check_input(data)
    if item_features is not None:
        check_input(item_features)
    check_out(out, inputs=[data, item_features])
    check_models(names)
    import torch

    torch.set_num_threads(threads)
    # Written after every model, so a long run keeps the models it has finished.
    with show_progress():
        labels = [row_name(n, True if item_features else None) for n in names]
        run_recommend(data, names, threads=threads, epochs=epochs, max_seconds=max_seconds,
                      item_features=item_features, device=device, rows=kept_rows(out, labels) if append else [],
                      on_model=lambda res: write_benchmark(out, res.dataset, res.rows, res.extra))


@benchmark_app.command("recommend-memory")
def memory_cmd(
    out: Path = typer.Option(Path("benchmarks/results/recommend.memory.json"), "--out"),
    n_items: int = typer.Option(1_000_000, "--items"),
    n_users: int = typer.Option(5000, "--users"),
    threads: int = typer.Option(2, "--threads"),
):
    """Peak memory of full-ranking evaluation on a simulated catalogue (target: < 4 GB at 1M items)."""
    check_out(out)
    if n_items < 1 or n_users < 1:
        raise ConfigError("--items and --users must be at least 1")
    import torch

    torch.set_num_threads(threads)
    res = run_memory(n_items, n_users)
    write_benchmark(out, res.dataset, res.rows, res.extra)


@benchmark_app.command("cold-start")
def cold_start_cmd(
    data: Path = typer.Option(..., "--data", help="Beauty-format file (or an event file)"),
    item_features: Path = typer.Option(..., "--item-features", help="item side features (JSON, Parquet or CSV)"),
    out: Path = typer.Option(..., "--out"),
    new_items: float = typer.Option(0.1, "--new-items", help="share of items held out of training"),
    models: str = typer.Option("sasrec,caser,category-pop,random", "--models"),
    threads: int = typer.Option(2, "--threads"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="cap epochs (for quick runs)"),
    max_seconds: Optional[float] = typer.Option(None, "--max-seconds", help="training wall-time budget per model"),
):
    """Hold out a share of the items and all their interactions, add them back with their
    features only, and score the test targets that are new items."""
    from shopml.benchmarks.cold_start import COLD_MODELS, run_cold_start

    names = [m.strip() for m in models.split(",") if m.strip()]
    check_input(data)
    check_input(item_features)
    check_out(out, inputs=[data, item_features])
    for n in names:
        if n not in COLD_MODELS:
            raise ConfigError(f"unknown model {n!r}; choose from {', '.join(COLD_MODELS)}")
    if not 0 < new_items < 1:
        raise ConfigError(f"--new-items must be between 0 and 1, got {new_items}")
    import torch

    torch.set_num_threads(threads)
    with show_progress():
        res = run_cold_start(data, item_features, new_items=new_items, models=names, threads=threads,
                             epochs=epochs, max_seconds=max_seconds)
    write_benchmark(out, res.dataset, res.rows, res.extra)


@rec_app.command("add-items")
def add_items_cmd(
    run: Path = typer.Option(..., "--run", help="a run folder from shopml fit"),
    item_features: Path = typer.Option(..., "--item-features", help="the new items' features (JSON, Parquet or CSV)"),
    out: Optional[Path] = typer.Option(None, "--out", help="write the refreshed run here (default: in place)"),
    json_out: bool = JSON_OPTION,
):
    """Add items with no interactions yet (cold start) to a run, scored through their features;
    no retraining. A running service picks them up on POST /v1/admin/reload."""
    from shopml.data.features import read_item_features
    from shopml.refresh import add_items_to_run
    from shopml.runs import check_run_target

    check_input(run)
    feats = read_item_features(item_features)
    if out is not None:
        check_run_target(out, inputs=[run, item_features])
    res = add_items_to_run(run, feats, out=out)
    if json_out:
        print_json(res)
    else:
        console.print(f"added {res['added']} item(s) to {', '.join(res['components'])}; run written to {res['out']}",
                      markup=False)


@benchmark_app.command("revenue")
def revenue_cmd(
    out: Path = typer.Option(..., "--out"),
    n_users: int = typer.Option(3000, "--users"),
    n_items: int = typer.Option(400, "--items"),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(2, "--threads"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="cap SASRec's epochs (for quick runs)"),
    max_ndcg_loss: float = typer.Option(0.05, "--max-ndcg-loss", help="relative NDCG@10 loss the chosen blend may cost"),
):
    """Revenue- and profit-aware ranking on the simulator, where the true probabilities are known:
    expected profit@10 and NDCG@10 over a grid of blends, the blend chosen on validation."""
    from shopml.benchmarks.revenue import run_revenue

    check_out(out)
    if n_users < 10 or n_items < 20:
        raise ConfigError("--users must be at least 10 and --items at least 20")
    if not 0 <= max_ndcg_loss < 1:
        raise ConfigError(f"--max-ndcg-loss must be in [0, 1), got {max_ndcg_loss}")
    import torch

    torch.set_num_threads(threads)
    res = run_revenue(n_users=n_users, n_items=n_items, seed=seed, threads=threads, epochs=epochs,
                      max_ndcg_loss=max_ndcg_loss)
    write_benchmark(out, res.dataset, res.rows, res.extra)
