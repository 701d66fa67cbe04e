"""Pick V-SKNN's (k, sample_size) for the Yoochoose benchmark on a validation split cut from
the TRAINING file, so the test file never informs the baseline's settings.

The training sessions are in time order: the first 90% are fitted, and prefixes of the last
10% (a seeded sample of 15,000 ``prefix -> next click`` cases) are scored. The winner goes
into ``shopml.behaviour.knn.VSKNN_YOOCHOOSE`` by hand.

    flock /tmp/shopml-cpu.lock .venv/bin/python benchmarks/tune_vsknn.py \\
        --train ../shared/data/yoochoose-1-64/train_sessions.txt --out benchmarks/results/vsknn_tuning.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from shopml.behaviour.knn import VSKNNRecommender
from shopml.behaviour.session_data import read_sessions
from shopml.cli._common import write_benchmark

GRID = [(100, 500), (100, None), (200, 2000), (500, 2000), (500, None), (1000, None)]


def validation_cases(sessions: list[list[str]], n_cases: int, seed: int):
    """Every ``prefix -> next click`` of ``sessions``, subsampled to ``n_cases``."""
    cases = [(s[:t], s[t]) for s in sessions for t in range(1, len(s))]
    pick = np.random.default_rng(seed).choice(len(cases), size=min(n_cases, len(cases)), replace=False)
    return [cases[i][0] for i in pick], [cases[i][1] for i in pick]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--cases", type=int, default=15_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    sessions = read_sessions(args.train)
    cut = int(len(sessions) * 0.9)
    prefixes, targets = validation_cases(sessions[cut:], args.cases, args.seed)
    rows = []
    for k, sample_size in GRID:
        res = VSKNNRecommender(k=k, sample_size=sample_size).fit(sessions[:cut]).evaluate(prefixes, targets, k=20)
        rows.append({"k": k, "sample_size": sample_size or "all", "recall@20": round(res["recall@20"], 4),
                     "mrr@20": round(res["mrr@20"], 4)})  # fmt: skip
    best = max(rows, key=lambda r: r["recall@20"])
    write_benchmark(args.out, f"V-SKNN validation ({args.train.name}: last 10% of sessions)", rows,
                    extra={"fit_sessions": cut, "validation_cases": len(targets), "best": best})  # fmt: skip


if __name__ == "__main__":
    main()
