"""Pick the Yoochoose benchmark's settings on a validation split cut from the TRAINING file,
so the test file does not choose them.

The training sessions are in time order: the first 90% are fitted, and prefixes of the last
10% (a seeded sample of 15,000 ``prefix -> next click`` cases) are scored. The winners go into
``shopml.sessions.baselines.VSKNN_YOOCHOOSE`` and ``shopml.sessions.estimator.DEFAULTS_YOOCHOOSE``
by hand.

    flock /tmp/shopml-cpu.lock .venv/bin/python benchmarks/tune_sessions.py --model vsknn \\
        --train ../shared/data/yoochoose-1-64/train_sessions.txt --out benchmarks/results/vsknn_tuning.json
    flock /tmp/shopml-cpu.lock .venv/bin/python benchmarks/tune_sessions.py --model gru4rec \\
        --train ../shared/data/yoochoose-1-64/train_sessions.txt --out benchmarks/results/gru4rec_tuning.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from shopml.data.public import read_sessions
from shopml.sessions.baselines import VSKNNRecommender
from shopml.sessions.estimator import DEFAULTS_YOOCHOOSE, SessionRecommender
from shopml.cli._common import write_benchmark

VSKNN_GRID = [dict(k=k, sample_size=m) for k, m in [(100, 500), (100, None), (200, 2000), (500, 2000),
                                                      (500, None), (1000, None)]]  # fmt: skip
# the benchmark default against the official README's example, which differs in the loss only
GRU_GRID = [dict(DEFAULTS_YOOCHOOSE), dict(DEFAULTS_YOOCHOOSE, loss="bpr-max", logq=0.0, bpreg=1.95, elu_param=0.5)]


def validation_cases(sessions: list[list[str]], n_cases: int, seed: int):
    """Every ``prefix -> next click`` of ``sessions``, subsampled to ``n_cases``."""
    cases = [(s[:t], s[t]) for s in sessions for t in range(1, len(s))]
    pick = np.random.default_rng(seed).choice(len(cases), size=min(n_cases, len(cases)), replace=False)
    return [cases[i][0] for i in pick], [cases[i][1] for i in pick]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["vsknn", "gru4rec"], required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cases", type=int, default=15_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sessions = read_sessions(args.train)
    cut = int(len(sessions) * 0.9)
    prefixes, targets = validation_cases(sessions[cut:], args.cases, args.seed)
    cls, grid, shown = ((VSKNNRecommender, VSKNN_GRID, ("k", "sample_size")) if args.model == "vsknn" else
                        (SessionRecommender, GRU_GRID, ("loss", "dim", "epochs")))  # fmt: skip
    rows = []
    for params in grid:
        t0 = time.perf_counter()
        model = cls(**params).fit(sessions[:cut])
        fit_s = time.perf_counter() - t0
        res = model.evaluate(prefixes, targets, k=20)
        rows.append({**{k: params[k] if params[k] is not None else "all" for k in shown},
                     "hr@20": round(res["hr@20"], 4), "mrr@20": round(res["mrr@20"], 4),
                     "fit_seconds": round(fit_s, 1)})  # fmt: skip
    write_benchmark(args.out, f"{args.model} validation ({args.train.name}: last 10% of sessions)", rows,
                    extra={"fit_sessions": cut, "validation_cases": len(targets), "grid": grid})  # fmt: skip


if __name__ == "__main__":
    main()
