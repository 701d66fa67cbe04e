"""Choose the warm start's settings (epochs, learning-rate share, replay) on a *validation*
time line: only events before the test cut are read, so the test months never steer them.

The time line mirrors ``shopml benchmark refresh``, shifted back by two months: the previous
run is fitted before ``--split-at``, the refit and the warm starts on the log before
``--valid-from`` and all are scored on ``[valid-from, test-from)``. Writes one JSON row per
setting with SASRec's protocol-A NDCG@10 and train seconds against the refit's. With
``--customers``, the same time line for the customer RNN: its warm start's MAE after a grid
of epochs against the refit's (the customers job alone, so it takes about a minute).

    python benchmarks/tune_refresh.py --events ../shared/data/online-retail/by-day \\
        --split-at 2011-04-01 --valid-from 2011-06-01 --test-from 2011-08-01 --out /tmp/tune.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import polars as pl

RETAIL_MAP = {"InvoiceDate": "timestamp", "CustomerID": "user_id", "StockCode": "item_id", "UnitPrice": "price",
              "Quantity": "quantity", "InvoiceNo": "session_id", "Description": "description"}


def _date(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=dt.timezone.utc)


def _sasrec_a(res) -> dict:
    row = next(r for r in res.metrics["recommend"] if r["model"] == "sasrec" and r["protocol"] == "A")
    return {"ndcg@10": row["ndcg@10"], "train_seconds": row["train_seconds"]}


def _sasrec(df, args, cfg, tmp: Path) -> list[dict]:
    """SASRec's warm start over a grid of (epochs, learning-rate share, replay) against its refit."""
    from shopml.pipeline import fit_all

    grid = [(3, 0.3, 1.0), (3, 1.0, 1.0), (6, 0.3, 1.0), (6, 1.0, 1.0), (3, 1.0, 0.25)]
    fit_all(df.filter(pl.col("timestamp") < args.split_at), tmp / "prev", config=cfg, jobs=("recommend",),
            max_minutes=10)
    full = _sasrec_a(fit_all(df, tmp / "full", config=cfg, jobs=("recommend",), test_from=args.valid_from,
                             max_minutes=10))
    rows = [{"mode": "full", **full}]
    for n, (epochs, lr_scale, replay) in enumerate(grid):
        c = replace(cfg, refresh_epochs=epochs, refresh_lr_scale=lr_scale, refresh_replay=replay)
        warm = _sasrec_a(fit_all(df, tmp / f"warm{n}", config=c, jobs=("recommend",), test_from=args.valid_from,
                                 warm_start=tmp / "prev"))
        rows.append({"mode": "warm", "epochs": epochs, "lr_scale": lr_scale, "replay": replay, **warm,
                     "ndcg_share": warm["ndcg@10"] / full["ndcg@10"],
                     "seconds_share": warm["train_seconds"] / full["train_seconds"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _customers(df, args, cfg, tmp: Path) -> list[dict]:
    """The customer RNN's warm start after 3, 10, 20 and 40 epochs against its refit."""
    from shopml.pipeline import fit_all

    def mae(res) -> dict:
        row = next(r for r in res.metrics["customers"] if r["model"] == "rnn")
        return {"mae": row["mae"], "train_seconds": row["train_seconds"]}

    fit_all(df.filter(pl.col("timestamp") < args.split_at), tmp / "prev", config=cfg, jobs=("customers",),
            max_minutes=10)
    full = mae(fit_all(df, tmp / "full", config=cfg, jobs=("customers",), test_from=args.valid_from, max_minutes=10))
    rows = [{"mode": "full", "job": "customers", **full}]
    for epochs in (3, 10, 20, 40):
        c = replace(cfg, customer_epochs=epochs)
        warm = mae(fit_all(df, tmp / f"warm{epochs}", config=c, jobs=("customers",), test_from=args.valid_from,
                           warm_start=tmp / "prev"))
        rows.append({"mode": "warm", "job": "customers", "epochs": epochs, **warm,
                     "mae_share": warm["mae"] / full["mae"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    from shopml.data.events import load_events
    from shopml.pipeline import FitConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--split-at", type=_date, required=True)
    ap.add_argument("--valid-from", type=_date, required=True)
    ap.add_argument("--test-from", type=_date, required=True, help="nothing from this day on is read")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--customers", action="store_true", help="tune the customer RNN's warm start instead")
    args = ap.parse_args(argv)
    df, _ = load_events(args.events, column_map=RETAIL_MAP, event_type="purchase")
    df = df.filter(pl.col("timestamp") < args.test_from)
    cfg = FitConfig().for_data(df)
    with tempfile.TemporaryDirectory() as tmp:
        rows = (_customers if args.customers else _sasrec)(df, args, cfg, Path(tmp))
    args.out.write_text(json.dumps({"command": "python benchmarks/tune_refresh.py " + " ".join(argv or []),
                                    "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
