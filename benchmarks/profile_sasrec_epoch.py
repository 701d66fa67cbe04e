"""Where one epoch of SASRec with features goes on Beauty: the torch profiler over a one-epoch
fit (its validation included), the top operators and the full softmax's share.

    python benchmarks/profile_sasrec_epoch.py --out benchmarks/results/sasrec_epoch_profile.json

Run it alone on the machine (2 torch threads); check out an earlier commit to compare.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from shopml.benchmarks.recommend import read_sequences, split
from shopml.cli._common import write_benchmark
from shopml.data.features import read_item_features
from shopml.recommend.models import SASRecRecommender

DATA = Path(__file__).resolve().parents[2] / "shared/data/amazon-beauty"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--data", type=Path, default=DATA / "Beauty.txt")
    ap.add_argument("--item-features", type=Path, default=DATA / "Beauty_item2attributes.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for p in (args.data, args.item_features):
        if not p.is_file():
            raise SystemExit(f"error: {p} not found (the shared Beauty data)")
    torch.set_num_threads(args.threads)
    train, valid, _, _ = split(read_sequences(args.data))
    feats = read_item_features(args.item_features)
    model = SASRecRecommender(progress=False, epochs=1, refit_epochs=0, threads=args.threads)
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.fit(train, valid, item_features=feats)
    wall = time.perf_counter() - t0
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ops) / 1e6
    softmax = next((e.cpu_time_total / 1e6 for e in ops if e.key == "_ChunkedCE"), 0.0)
    rows = [{"op": e.key, "self_seconds": e.self_cpu_time_total / 1e6, "calls": e.count} for e in ops[:15]]
    write_benchmark(Path(args.out), "SASRec + features, one Beauty epoch under the torch profiler", rows,
                    {"threads": args.threads, "wall_seconds": wall, "profiled_seconds": total,
                     "softmax_seconds": softmax, "epoch_seconds": model.fit_info_["history"][0]["seconds"],
                     "command": f"python benchmarks/profile_sasrec_epoch.py --out {args.out}"})
    print(f"epoch with validation {model.fit_info_['history'][0]['seconds']:.1f} s; profiled {total:.1f} s; "
          f"full softmax {softmax:.1f} s")


if __name__ == "__main__":
    main()
