"""p50/p99 of PriceBook.optimize_item (the service's call) over bounds from [1,2] to [1e-300, 1e9].

Command: python benchmarks/price_latency.py (one torch thread, 100 timed requests per case)."""
import time, numpy as np, polars as pl, torch
from shopml.data.market import simulate_market
from shopml.pricing.demand import NeuralDemand
from shopml.pricing.price_book import PriceBook
torch.set_num_threads(1)
panel = simulate_market(n_items=10, n_stores=20, n_weeks=30, seed=0).panel.with_columns(
    pl.format("item{}", pl.col("item")).alias("item"), pl.col("store").cast(pl.Utf8))
demand = NeuralDemand(categorical=["item", "store"], numeric=["promo"], n_members=3, epochs=2).fit(panel)
book = PriceBook().fit(demand, panel.drop("_shock"))
torch.set_num_threads(1)  # fit() sets 2; a request is one thread
print("context rows per item:", book.context_.filter(pl.col("item") == "item1").height)
reqs = {"default": {}, "narrow": dict(min_price=1.0, max_price=2.0),
        "wide": dict(min_price=1e-300, max_price=1e9), "wide+.99": dict(min_price=1e-300, max_price=1e9, endings=[0.99]),
        "1e5+.99": dict(max_price=1e5, endings=[0.99]),
        "all5": dict(min_price=0.5, max_price=1e9, max_change=5.0, min_margin=0.05, endings=[0.49, 0.99])}
for name, kw in reqs.items():
    t, c = [], []
    for i in range(110):
        t0, c0 = time.perf_counter(), time.process_time()
        book.optimize_item(f"item{i % 10}", **kw)
        t.append(time.perf_counter() - t0); c.append(time.process_time() - c0)
    t, c = np.array(t[10:]) * 1e3, np.array(c[10:]) * 1e3
    print(f"{name:10s} wall p50 {np.percentile(t, 50):6.1f} p99 {np.percentile(t, 99):6.1f} | "
          f"cpu p50 {np.percentile(c, 50):6.1f} p99 {np.percentile(c, 99):6.1f} ms", flush=True)
