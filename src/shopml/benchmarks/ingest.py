"""The ingest benchmark (``shopml benchmark ingest``): simulate N events to Parquet, then time
ingest + validation and sequence building.

Generation and ingestion run in fresh child processes (with POLARS_MAX_THREADS set, which
Polars reads only at import), so each stage's peak RSS is its own. A child imports only this
module, not the CLI.

Example:
    >>> res = run_ingest(3000)                        # doctest: +SKIP
    >>> [r["model"] for r in res.rows][:2]             # doctest: +SKIP
    ['generate (simulate -> parquet)', 'ingest+validate (parquet)']
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shopml.benchmarks._common import BenchmarkResult, peak_rss_mb
from shopml.errors import ConfigError

__all__ = ["TARGET", "run_ingest"]

log = logging.getLogger(__name__)

TARGET = ">= 1M events/s ingest+validate, peak RSS < 4096 MB"
_STAGE_CODE = "from shopml.benchmarks.ingest import _bench_child; _bench_child()"


def run_ingest(events: int = 10_000_000, *, threads: int = 2, seed: int = 0, keep: Path | None = None) -> BenchmarkResult:
    """Rows: generation, ingest+validate, build_sequences and their total, each with
    events/s and peak RSS. ``keep``: write the simulated Parquet file there (default: a
    temporary file)."""
    if events < 10:
        raise ConfigError(f"events must be at least 10, got {events}")
    with tempfile.TemporaryDirectory(prefix="shopml-ingest-") as tmp:
        parquet = keep or Path(tmp) / "events.parquet"
        log.info("ingest: generating %s events", f"{events:,}")
        gen = _run_child({"stage": "generate", "events": events, "seed": seed, "path": str(parquet)}, threads, tmp)
        log.info("ingest: reading them back")
        res = _run_child({"stage": "ingest", "path": str(parquet)}, threads, tmp)
    rows = [
        {"model": "generate (simulate -> parquet)", "events": gen["events"], "seconds": gen["seconds"],
         "events_per_second": gen["events"] / gen["seconds"], "peak_rss_mb": gen["peak_rss_mb"]},
        *res["rows"],
    ]
    extra = {"events": events, "threads": threads, "generator": gen["generator"], "parquet_mb": gen["parquet_mb"],
             "target": TARGET}
    return BenchmarkResult(f"simulated events ({events:,})", rows, extra)


def _run_child(job: dict, threads: int, tmp: str) -> dict:
    env = {**os.environ, "POLARS_MAX_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "SHOPML_THREADS": str(threads), "SHOPML_BENCH_JOB": json.dumps(job)}
    env.setdefault("SHOPML_KEY_FILE", str(Path(tmp) / "bench.key"))
    proc = subprocess.run([sys.executable, "-c", _STAGE_CODE], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"benchmark stage {job['stage']} failed: {tail[0]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _bench_child() -> None:
    """Runs inside a child process: one benchmark stage, result as one JSON line."""
    job = json.loads(os.environ["SHOPML_BENCH_JOB"])
    result = _bench_generate(job) if job["stage"] == "generate" else _bench_ingest(job)
    sys.stdout.write(json.dumps(result) + "\n")


def _bench_generate(job: dict) -> dict:
    t0 = time.perf_counter()
    events, generator = _simulate(job["events"], job["seed"])
    events.write_parquet(job["path"])
    seconds = time.perf_counter() - t0
    return {"events": events.height, "seconds": seconds, "peak_rss_mb": peak_rss_mb(),
            "generator": generator, "parquet_mb": os.path.getsize(job["path"]) / 2**20}


def _simulate(n: int, seed: int):
    from shopml.data.simulate import simulate_events

    return simulate_events(n, seed=seed), "shopml.data.simulate.simulate_events"


def _bench_ingest(job: dict) -> dict:
    from shopml.data.events import load_events
    from shopml.data.sequences import build_sequences

    t0 = time.perf_counter()
    df, warnings = load_events(job["path"])
    t1 = time.perf_counter()
    rss_ingest = peak_rss_mb()
    seqs = build_sequences(df)
    t2 = time.perf_counter()
    n = df.height
    rows = [
        {"model": "ingest+validate (parquet)", "events": n, "seconds": t1 - t0,
         "events_per_second": n / (t1 - t0), "peak_rss_mb": rss_ingest, "warnings": len(warnings)},
        {"model": "build_sequences", "events": n, "seconds": t2 - t1, "events_per_second": n / (t2 - t1),
         "peak_rss_mb": peak_rss_mb(), "users": seqs.n_users, "items": seqs.n_items},
        {"model": "total (ingest+validate+sequences)", "events": n, "seconds": t2 - t0,
         "events_per_second": n / (t2 - t0), "peak_rss_mb": peak_rss_mb()},
    ]
    return {"rows": rows}
