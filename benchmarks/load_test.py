"""Load benchmark of the HTTP service: top-10 recommendations for known users of a
Beauty-trained SASRec run, over loopback (127.0.0.1 only), bounded in time.

Steps: (1) make the run if it is missing: train with ``shopml recommend fit`` (or reuse
``--model-dir``), then wrap the model and a popularity fallback into a run folder;
(2) start ``shopml serve`` on a free loopback port; (3) drive it with ``wrk`` (Debian
package) and a Lua script that picks a random Beauty user id per request, or with an
asyncio httpx client when wrk is absent; (4) write ``--out`` JSON and its Markdown twin.

Run it under the shared CPU lock::

    flock /tmp/shopml-cpu.lock .venv/bin/python benchmarks/load_test.py \\
        --data ../shared/data/amazon-beauty/Beauty.txt --run runs/beauty-sasrec

Bars (issue 6): >= 500 requests/s, p99 <= 50 ms, 0 errors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LUA = """
math.randomseed(%(seed)d)
request = function()
  local u = math.random(1, %(n_users)d)
  return wrk.format("GET", "/v1/users/" .. u .. "/recommendations?k=10%(query)s", {["X-API-Key"] = "%(key)s"})
end
"""


def make_run(run: Path, data: Path, model_dir: Path | None, threads: int) -> None:
    """A run folder holding the SASRec model (trained now unless ``model_dir``) and a
    most-popular fallback fitted on the same Beauty sequences."""
    from shopml.data.public import read_beauty
    from shopml.data.sequences import leave_one_out
    from shopml.recommend.baselines import MostPopular
    from shopml.recommend.models import SASRecRecommender
    from shopml.runs import save_run

    if model_dir is None or not (model_dir / "model.json").exists():
        model_dir = model_dir or run.with_name(run.name + "-model")
        cmd = [str(BIN / "shopml"), "recommend", "fit", "--data", str(data), "--model", "sasrec",
               "--out", str(model_dir), "--threads", str(threads)]
        print("training:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    sasrec = SASRecRecommender.load(model_dir)
    seqs = read_beauty(data)
    train, valid, _ = leave_one_out(seqs)
    pop = MostPopular().fit(train.append(valid))
    save_run(run, components={"recommend": sasrec, "recommend_pop": pop}, params={"source": str(data)},
             metrics={"recommend": [{"model": "sasrec", **{k: v for k, v in sasrec.fit_info_.items()
                                                            if k in ("best_score", "best_epoch", "epochs")}}]},
             items=sasrec.item_ids_, users=sasrec.user_ids_)


def with_categories(run: Path, attributes: Path, out: Path) -> str:
    """A copy of ``run`` whose recommender knows item categories (each item's first Beauty
    attribute), so the per-category cap has something to cap; returns the rules' query
    string: the 3 most popular items excluded (out of stock) and at most 2 per category."""
    from shopml.runs import load_run, save_run

    r = load_run(run)
    rec = r.get("recommend")
    attrs = json.loads(attributes.read_text())
    rec.item_categories_ = [str(attrs[i][0]) if attrs.get(i) else "" for i in rec.item_ids_]
    save_run(out, components=r.components, params=r.manifest.get("params"), metrics=r.manifest.get("metrics"),
             items=r.items, users=rec.user_ids_)
    top = [rec.item_ids_[j - 1] for j in rec.pop_.argsort()[::-1][:3]]
    return "".join(f"&exclude={i}" for i in top) + "&max_per_category=2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, port: int, key: str, threads: int) -> subprocess.Popen:
    env = {**os.environ, "SHOPML_API_KEYS": f"{key}:recommend"}
    cmd = [str(BIN / "shopml"), "serve", "--run", str(run), "--host", "127.0.0.1", "--port", str(port),
           "--threads", str(threads)]
    proc = subprocess.Popen(cmd, env=env)
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not become ready in 120 s")


def run_wrk(port: int, key: str, n_users: int, seconds: int, connections: int, query: str = "") -> dict:
    script = Path(tempfile.mkdtemp()) / "recs.lua"
    script.write_text(LUA % {"seed": 0, "n_users": n_users, "key": key, "query": query})
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
           f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    print(out)
    pct = {m[0]: _ms(m[1], m[2]) for m in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    sock_errors = sum(int(x) for x in sock.groups()) if sock else 0
    return {"tool": "wrk", "command": " ".join(cmd[:-1] + ["<url>"]), "requests": total,
            "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": pct.get("50"), "p90_ms": pct.get("90"), "p99_ms": pct.get("99"),
            "errors": non2xx + sock_errors}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_httpx(port: int, key: str, n_users: int, seconds: int, connections: int, query: str = "") -> dict:
    """Fallback load generator: ``connections`` asyncio workers in closed loop."""
    import asyncio
    import random

    import httpx
    import numpy as np

    lat, errors = [], 0

    async def worker(client, rng, stop):
        nonlocal errors
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = await client.get(f"/v1/users/{rng.randint(1, n_users)}/recommendations?k=10{query}")
            lat.append(time.perf_counter() - t0)
            errors += r.status_code != 200

    async def main():
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key},
                                     limits=limits, timeout=10) as client:
            stop = time.perf_counter() + seconds
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(client, random.Random(i), stop) for i in range(connections)))
            return time.perf_counter() - t0

    wall = asyncio.run(main())
    ms = np.asarray(lat) * 1e3
    return {"tool": "httpx-asyncio", "command": f"{connections} asyncio workers for {seconds} s",
            "requests": len(lat), "requests_per_s": len(lat) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)), "errors": errors}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/amazon-beauty/Beauty.txt")
    ap.add_argument("--run", type=Path, default=ROOT / "runs/beauty-sasrec")
    ap.add_argument("--model-dir", type=Path, default=None, help="reuse a `shopml recommend fit` folder")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/load.json")
    ap.add_argument("--rules", action="store_true", help="two rules on every request: the 3 most popular items "
                    "excluded and at most 2 items per category (each item's first attribute in --attributes)")
    ap.add_argument("--attributes", type=Path, default=ROOT.parent / "shared/data/amazon-beauty/Beauty_item2attributes.json")
    args = ap.parse_args(argv)
    if not (args.run / "manifest.json").exists():
        make_run(args.run, args.data, args.model_dir, threads=2)
    n_users = sum(1 for _ in open(args.data))
    key = secrets.token_urlsafe(16)
    port = free_port()
    served, query = args.run, ""
    if args.rules:
        served = Path(tempfile.mkdtemp(prefix="shopml-load-")) / "run"
        query = with_categories(args.run, args.attributes, served)
    server = start_server(served, port, key, args.threads)
    try:
        load = run_wrk if shutil.which("wrk") else run_httpx
        load(port, key, n_users, 2, args.connections, query)  # warm-up, not reported
        res = load(port, key, n_users, args.seconds, args.connections, query)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if args.rules:
            shutil.rmtree(served.parent, ignore_errors=True)
    res.update(invocation="python benchmarks/load_test.py " + " ".join(sys.argv[1:] if argv is None else argv),
               run=str(args.run), users=n_users, seconds=args.seconds, connections=args.connections,
               server_threads=args.threads, endpoint="GET /v1/users/{id}/recommendations?k=10" + query,
               bars=({"requests_per_s": ">= 1000", "p99_ms": "<= 20", "errors": "0"} if args.rules
                     else {"requests_per_s": ">= 500", "p99_ms": "<= 50", "errors": "0"}),
               passed=(res["requests_per_s"] >= (1000 if args.rules else 500)
                       and (res["p99_ms"] or 1e9) <= (20 if args.rules else 50) and res["errors"] == 0),
               cpu="2 cores shared by server and load generator")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    rows = "\n".join(f"| {k} | {v} |" for k, v in res.items() if k != "bars")
    args.out.with_suffix(".md").write_text(f"# HTTP load test\n\n| metric | value |\n|---|---|\n{rows}\n")
    print(json.dumps(res, indent=2))
    return 0 if res["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
