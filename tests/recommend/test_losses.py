"""The chunked cross-entropy equals the dense one, values and gradients, with the repeat term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from shopml.recommend.losses import chunked_cross_entropy, repeat_features


def _dense(h, w, b, t, idx, val):
    logits = h @ w.T + (b if b is not None else 0.0)
    if val is not None:
        rows = torch.arange(len(h))[:, None].expand_as(idx)
        ok = idx >= 0
        logits = logits.index_put((rows[ok], idx[ok]), val[ok], accumulate=True)
    return F.cross_entropy(logits, t)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(2, 30), st.integers(1, 6), st.integers(1, 400),
       st.booleans(), st.booleans(), st.integers(0, 1000))
def test_chunked_equals_dense(n_rows, n_items, dim, max_elements, bias, repeat, seed):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n_rows, dim, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(n_items, dim, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(n_items, generator=g, dtype=torch.float64, requires_grad=True) if bias else None
    t = torch.randint(0, n_items, (n_rows,), generator=g)
    idx = repeat_features(torch.randint(0, n_items + 1, (n_rows, 5), generator=g))[0] if repeat else None
    gate = torch.randn(n_rows, 5, generator=g, dtype=torch.float64, requires_grad=True) if repeat else None
    leaves = [x for x in (h, w, b, gate) if x is not None]
    got = chunked_cross_entropy(h, w, b, t, idx, gate, max_elements=max_elements)
    g1 = torch.autograd.grad(2.5 * got, leaves)
    want = _dense(h, w, b, t, idx, gate)
    g2 = torch.autograd.grad(2.5 * want, leaves)
    assert torch.allclose(got, want, atol=1e-10)
    for a, c in zip(g1, g2):
        assert torch.allclose(a, c, atol=1e-10)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 60), st.integers(2, 300), st.integers(0, 1000), st.booleans(), st.booleans())
def test_bf16_products_stay_within_bfloat16_rounding_of_the_exact_loss(n_rows, n_items, seed, bias, repeat):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n_rows, 16, generator=g, requires_grad=True)
    w = (0.3 * torch.randn(n_items, 16, generator=g)).requires_grad_()
    b = torch.randn(n_items, generator=g, requires_grad=True) if bias else None
    t = torch.randint(0, n_items, (n_rows,), generator=g)
    idx = repeat_features(torch.randint(0, n_items + 1, (n_rows, 5), generator=g))[0] if repeat else None
    gate = torch.randn(n_rows, 5, generator=g, requires_grad=True) if repeat else None
    leaves = [x for x in (h, w, b, gate) if x is not None]
    got = chunked_cross_entropy(h, w, b, t, idx, gate, max_elements=97, bf16=True)
    g1 = torch.autograd.grad(got, leaves)
    want = _dense(h.double(), w.double(), None if b is None else b.double(), t, idx, None if gate is None else gate.double())
    g2 = torch.autograd.grad(want, leaves)
    assert abs(float(got) - float(want)) <= 2e-2 * max(1.0, abs(float(want)))  # bf16: 8 bits of mantissa
    for a, c in zip(g1, g2):
        assert float((a.double() - c).norm()) <= 3e-2 * float(c.norm()) + 1e-6


def test_repeat_features_one_entry_per_distinct_item_with_count_and_recency():
    idx, f = repeat_features(torch.tensor([[0, 3, 3, 1], [2, 2, 2, 2]]))
    assert idx.tolist() == [[-1, -1, 2, 0], [-1, -1, -1, 1]]
    assert torch.allclose(f[0, 2], torch.tensor([1.0, torch.log(torch.tensor(2.0)), 0.5]))
    assert torch.allclose(f[1, 3], torch.tensor([1.0, torch.log(torch.tensor(4.0)), 1.0]))
    assert not f[0, :2].any() and not f[1, :3].any()  # padding and earlier duplicates carry nothing


def test_bf16_products_take_a_bounded_set_of_shapes(monkeypatch):
    # oneDNN caches a kernel and its scratch memory per shape: a last chunk of a new length
    # in every batch grew a long run's RSS by ~1.5 MB a batch, so chunks are padded to 64 rows.
    import shopml.recommend.losses as losses

    shapes, real_mm = set(), torch.mm

    def mm(a, b, *args, **kw):
        if a.dtype == torch.bfloat16:
            shapes.add((tuple(a.shape), tuple(b.shape)))
        return real_mm(a, b, *args, **kw)

    monkeypatch.setattr(losses.torch, "mm", mm)
    w = torch.randn(50, 8, requires_grad=True)
    step = (1 << 14) // 50  # 327 rows per chunk
    for n_rows in range(400, 1400, 37):  # 28 batch lengths, 28 different last chunks
        h = torch.randn(n_rows, 8, requires_grad=True)
        chunked_cross_entropy(h, w, None, torch.randint(0, 50, (n_rows,)), max_elements=1 << 14, bf16=True).backward()
    row_counts = {b[1] for a, b in shapes if a == (50, 8)}  # the logits product w @ h.T: [50, 8] x [8, rows]
    assert row_counts <= {step} | set(range(64, step, 64)), row_counts
    assert len(shapes) <= 3 * (step // 64 + 1)
