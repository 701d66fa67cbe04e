"""GRU4Rec session recommender: the details that matter, planted signal, contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopml.data.features import ItemFeatures
from shopml.sessions.data import NegativeSampler, SessionBatch, session_parallel_batches
from shopml.sessions.nets import GRU4RecNet
from shopml.sessions.train import IndexedAdagrad, bpr_max_loss, carry_hidden, sampled_logq_loss
from shopml.sessions.estimator import SessionRecommender
from shopml.errors import ConfigError, NotFittedError


def planted_sessions(n_sessions=600, n_items=30, seed=0):
    """Each item i has a planted successor succ[i]; sessions follow it 90% of the time."""
    succ = np.random.default_rng(12345).permutation(n_items)  # same plant for train and test
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_sessions):
        x = int(rng.integers(n_items))
        s = [x]
        for _ in range(int(rng.integers(2, 7))):
            x = int(succ[x]) if rng.random() < 0.9 else int(rng.integers(n_items))
            s.append(x)
        out.append([f"i{v}" for v in s])
    return out, succ


# --- session-parallel mini-batches -------------------------------------------------

def test_hidden_resets_exactly_at_session_starts():
    indptr = np.array([0, 3, 5, 9, 11])  # sessions of 3, 2, 4, 2 events
    items = np.arange(1, 12)
    batches = list(session_parallel_batches(indptr, items, batch_size=2))
    # every (input, target) pair inside a session appears once, none across sessions
    pairs = sorted((int(a), int(b)) for bt in batches for a, b in zip(bt.inputs, bt.targets))
    assert pairs == [(1, 2), (2, 3), (4, 5), (6, 7), (7, 8), (8, 9), (10, 11)]
    session_start = {1, 4, 6, 10}
    for bt in batches:
        assert bt.reset.tolist() == [int(x) in session_start for x in bt.inputs]
    # the carried state is zero exactly where a session starts, kept elsewhere
    h = torch.ones(2, 3)
    for bt in batches:
        h = carry_hidden(h, bt)
        assert torch.equal((h == 0).all(1), torch.from_numpy(bt.reset))
        h = torch.ones_like(h)  # the GRU step makes every row non-zero again


def test_carry_drops_finished_rows_and_cuts_graph():
    h = torch.arange(6.0).reshape(3, 2).requires_grad_()
    b = SessionBatch(np.array([1, 2]), np.array([2, 3]), np.array([False, True]), np.array([0, 2]))
    out = carry_hidden(h * 2, b)
    assert out.tolist() == [[0.0, 2.0], [0.0, 0.0]] and not out.requires_grad


def test_negatives_shared_across_the_batch_and_follow_popularity():
    counts = np.array([0, 1000, 10, 10, 1.0])
    s = NegativeSampler(counts, n_sample=5000, alpha=1.0, seed=0)
    draw = s.draw()
    assert draw.shape == (5000,) and draw.min() >= 1  # one vector for the whole batch, never padding
    assert (draw == 1).mean() > 0.9
    flat = NegativeSampler(counts, n_sample=5000, alpha=0.0, seed=0).draw()
    assert abs((flat == 1).mean() - 0.25) < 0.03  # alpha=0: uniform over items


def test_logits_only_for_targets_and_shared_negatives():
    net = GRU4RecNet(n_items=50, hidden=8)
    x, y, neg = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6]), torch.tensor([7, 8, 9, 10])
    h, logits = net.train_logits(torch.zeros(3, 8), x, torch.cat([y, neg]))
    assert logits.shape == (3, 7)  # (B, B + n_sample), not (B, n_items)
    # diagonal = each row's own target score
    full = net.score(h)
    assert torch.allclose(logits.diagonal(), full[torch.arange(3), y], atol=1e-5)


def test_logq_correction_subtracts_log_sampling_weight():
    logits = torch.zeros(2, 4)
    log_q = torch.log(torch.tensor([1.0, 1.0, 10.0, 10.0]))
    corrected = sampled_logq_loss(logits, log_q, norm=2)
    plain = sampled_logq_loss(logits, None, norm=2)
    assert plain == pytest.approx(np.log(4))
    # By hand: each row's logits become (0, 0, -log 10, -log 10) and its target is one of
    # the unit-weight columns: -log(1 / (1 + 1 + 0.1 + 0.1)) = log 2.2, the mean of two rows.
    assert corrected.item() == pytest.approx(np.log(2.2), rel=1e-6)


def test_bpr_max_matches_hand_computed_values():
    # row 0: target 2 vs negatives 0, 0 -> equal softmax weights, loss = -log sigmoid(2)
    # row 1: target 0 vs negatives 1, -1 -> weights softmax(1, -1) = (.8808, .1192);
    #   -log(.8808 * sigmoid(-1) + .1192 * sigmoid(1)) = 1.1270, + bpreg * (.8808 + .1192) = 1
    logits = torch.tensor([[2.0, 0.0, 0.0], [1.0, 0.0, -1.0]])
    target_col = torch.tensor([0, 1])
    plain = bpr_max_loss(logits, target_col, bpreg=0.0, elu_param=0.0, norm=1)
    assert plain.item() == pytest.approx(0.1269 + 1.1270, abs=1e-3)
    reg = bpr_max_loss(logits, target_col, bpreg=1.0, elu_param=0.0, norm=2)
    assert reg.item() == pytest.approx((0.1269 + 1.1270 + 1.0) / 2, abs=1e-3)
    # the ELU final activation maps -1 to .5 * (exp(-1) - 1) before the loss
    elu = bpr_max_loss(torch.tensor([[0.0, -1.0]]), torch.tensor([0]), bpreg=0.0, elu_param=0.5, norm=1)
    assert elu.item() == pytest.approx(-np.log(1 / (1 + np.exp(0.5 * (np.exp(-1) - 1)))), abs=1e-5)


def test_bpr_max_ignores_the_target_column_as_a_negative():
    # raising the target's own score must only lower the loss (it never acts as a negative)
    base = torch.tensor([[0.0, 0.5, -0.5, 1.0]])
    hi = base.clone()
    hi[0, 2] = 3.0
    col = torch.tensor([2])
    lo_loss = bpr_max_loss(base, col, bpreg=1.0, elu_param=0.5, norm=1)
    hi_loss = bpr_max_loss(hi, col, bpreg=1.0, elu_param=0.5, norm=1)
    assert hi_loss < lo_loss


def test_constrained_embedding_ties_input_and_output():
    torch.manual_seed(0)
    net = GRU4RecNet(n_items=10, hidden=4, dropout_hidden=0.0)
    assert not any(p.shape == net.item.weight.shape for n, p in net.named_parameters() if n != "item.weight")
    assert net.item.sparse  # sparse gradient: only touched rows are updated
    # One storage: the output scores are products with the very table the GRU reads from.
    h = torch.randn(2, 4)
    assert torch.allclose(net.score(h)[:, 1:], h @ net.item.weight[1:].T + net.bias.weight[1:].T, atol=1e-6)
    a, b = 3, 7  # a is only ever an input, b only ever a candidate
    enc_a, score_b = net.encode(torch.tensor([[a]])).detach(), net.score(h)[:, b].detach()
    _, logits = net.train_logits(torch.zeros(1, 4), torch.tensor([a]), torch.tensor([b]))
    assert torch.allclose(logits[0, 0], (net.encode(torch.tensor([[a]])) @ net.item.weight[b])[0])
    before = net.item.weight.detach().clone()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    opt.zero_grad()
    (-logits.sum()).backward()
    opt.step()
    moved = (net.item.weight != before).any(1)
    # the input row moved through the GRU's input, the candidate row through the output
    assert moved.nonzero().flatten().tolist() == [a, b]
    with torch.no_grad():
        assert not torch.allclose(net.encode(torch.tensor([[a]])), enc_a)
        assert not torch.allclose(net.score(h)[:, b], score_b)


def test_adagrad_updates_only_touched_rows():
    emb = torch.nn.Embedding(6, 3, sparse=True)
    before = emb.weight.detach().clone()
    opt = IndexedAdagrad(emb.parameters(), lr=0.1)
    emb(torch.tensor([1, 1, 4])).sum().backward()
    opt.step()
    changed = (emb.weight != before).any(1).tolist()
    assert changed == [False, True, False, False, True, False]
    # duplicate rows are summed before the non-linear update: row 1 got grad 2 -> step lr
    assert torch.allclose(emb.weight[1] - before[1], torch.full((3,), -0.1), atol=1e-4)


@pytest.mark.parametrize("momentum,n_tokens", [(0.0, 0), (0.5, 0), (0.5, 3)])
def test_gathered_rows_step_equals_sparse_step(momentum, n_tokens):
    """The fast path (distinct rows gathered, updated by update_rows) takes the same steps
    as the sparse-gradient path, duplicates, momentum and item features included."""
    torch.manual_seed(0)
    a, b = (GRU4RecNet(n_items=12, hidden=6, dropout_hidden=0.0, n_tokens=n_tokens) for _ in range(2))
    b.load_state_dict(a.state_dict())
    if n_tokens:  # items 1..12 carry token (i % 3) + 1, item 5 also token 1, item 12 none
        bags = [[], *[[i % 3 + 1] + ([1] if i == 5 else []) for i in range(1, 12)], []]
        off = torch.tensor(np.cumsum([0] + [len(g) for g in bags]))
        tok = torch.tensor([t for g in bags for t in g])
        for net in (a, b):
            net.features.set_tokens(off, tok)
    opt_a, opt_b = IndexedAdagrad(a.parameters(), lr=0.1, momentum=momentum), IndexedAdagrad(b.parameters(), lr=0.1, momentum=momentum)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        x, y = torch.randint(1, 13, (4,), generator=gen), torch.randint(1, 13, (4,), generator=gen)
        cand = torch.cat([y, torch.tensor([3, 3, 7, 1])])  # duplicated negatives
        _, logits = a.train_logits(torch.zeros(4, 6), x, cand)
        a.zero_grad(set_to_none=True)
        sampled_logq_loss(logits, None, 4).backward()
        opt_a.step()
        uniq, inv = torch.unique(torch.cat([x, cand]), return_inverse=True)
        buniq, binv = torch.unique(cand, return_inverse=True)
        rows = b.item.weight.detach().index_select(0, uniq).requires_grad_()
        brows = b.bias.weight.detach().index_select(0, buniq).requires_grad_()
        _, logits_b = b.train_logits_rows(torch.zeros(4, 6), x, b.with_features(rows, uniq), inv, brows, binv)
        b.zero_grad(set_to_none=True)
        sampled_logq_loss(logits_b, None, 4).backward()
        opt_b.step()
        opt_b.update_rows(b.item.weight, uniq, rows)
        opt_b.update_rows(b.bias.weight, buniq, brows)
        assert torch.allclose(logits, logits_b, atol=1e-5)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-5), name


# --- planted signal and contract -----------------------------------------------------

@pytest.fixture(scope="module")
def fitted():
    train, succ = planted_sessions()
    m = SessionRecommender(dim=32, batch_size=16, n_sample=8, sample_alpha=0.5, lr=0.1, epochs=4, seed=0)
    return m.fit(train), succ


def test_features_survive_save_and_load_and_score_added_items(tmp_path):
    train, _ = planted_sessions(200)
    feats = ItemFeatures.from_mapping({f"i{i}": [f"g{i % 3}"] for i in range(30)} | {"new": ["g1"]})
    m = SessionRecommender(dim=8, batch_size=8, n_sample=4, epochs=2, seed=0).fit(train, item_features=feats)
    assert m.net_.features is not None and m._n_tokens() == 3
    m.save(tmp_path / "m")
    loaded = SessionRecommender.load(tmp_path / "m")
    q = [["i1", "i2"], ["i7"]]
    assert loaded.recommend(q, k=5) == m.recommend(q, k=5)
    loaded.add_items(["new"], feats)
    with torch.no_grad():  # the new item's vector is its token's: a zero id row
        table = loaded.net_.table()
        assert torch.equal(loaded.net_.item.weight[-1], torch.zeros(8))
        assert torch.allclose(table[-1], loaded.net_.features.tok_emb.weight[feats._index["attr=g1"]])
    assert "new" in [r["item_id"] for r in loaded.recommend([["i1"]], k=31)[0]]


def test_learns_planted_successors(fitted):
    m, succ = fitted
    test, _ = planted_sessions(200, seed=1)
    prefixes = [s[:-1] for s in test]
    targets = [s[-1] for s in test]
    res = m.evaluate(prefixes, targets, k=5)
    assert res["hr@5"] > 0.8  # 90% follow the planted successor
    top1 = m.predict([[f"i{i}"] for i in range(30)], k=1)
    assert np.mean([t[0] == f"i{succ[i]}" for i, t in enumerate(top1)]) > 0.9


def test_bpr_max_learns_planted_successors():
    train, succ = planted_sessions()
    m = SessionRecommender(dim=32, batch_size=16, n_sample=8, sample_alpha=0.5, lr=0.1, momentum=0.3,
                           loss="bpr-max", bpreg=1.0, elu_param=0.5, logq=0.0, epochs=4).fit(train)  # fmt: skip
    top1 = m.predict([[f"i{i}"] for i in range(30)], k=1)
    assert np.mean([t[0] == f"i{succ[i]}" for i, t in enumerate(top1)]) > 0.9


def test_fallback_empty_and_unknown_sessions(fitted):
    m, _ = fitted
    with pytest.warns(UserWarning, match="unknown item"):
        recs = m.recommend([[], ["never-seen", "nope"], ["i3"]], k=3)
    assert [r[0].get("fallback") for r in recs] == ["popularity", "popularity", None]
    assert recs[0] == recs[1] and len(recs[0]) == 3
    assert recs[0][0]["item_id"] == max(m.item_ids_, key=lambda i: m.pop_[m.item_ids_.index(i) + 1])
    assert all(np.isfinite([x["score"] for x in r]).all() for r in recs)


def test_unknown_target_is_a_miss(fitted):
    m, _ = fitted
    assert m.rank_targets([["i1"]], ["unseen"]).tolist() == [np.inf]


def test_not_fitted_and_bad_params():
    with pytest.raises(NotFittedError):
        SessionRecommender().predict([["a"]])
    with pytest.raises(ConfigError):
        SessionRecommender(dropout_hidden=1.5).fit([["a", "b"]])
    with pytest.raises(ConfigError):
        SessionRecommender().fit([["a"]])  # no session with a next click
    with pytest.raises(ConfigError, match="bpr-max"):
        SessionRecommender(loss="top1").fit([["a", "b"]])


def _simulated_view_sessions(shop):
    import polars as pl

    views = shop.events.filter(pl.col("event_type") == "view").sort("session_id", "timestamp")
    return views.group_by("session_id", maintain_order=True).agg("item_id")["item_id"].to_list()


def test_learns_the_simulators_planted_successors():
    from shopml.data.simulate import simulate_shop

    shop = simulate_shop(n_users=400, n_items=60, n_categories=4, seed=3)
    sessions = _simulated_view_sessions(shop)
    m = SessionRecommender(dim=32, batch_size=16, n_sample=16, sample_alpha=0.5, lr=0.1, epochs=3).fit(sessions)
    truth = shop.truth
    items = [i for i in truth.item_ids if i in set(m.item_ids_)]
    top1 = m.predict([[i] for i in items], k=1)
    hit = np.mean([truth.successor(i) == t[0] for i, t in zip(items, top1)])
    assert hit > 0.9, hit  # the successor follows 60% of the time; the rest is taste noise


def test_weight_averaging_is_the_mean_of_epoch_snapshots():
    from shopml.sessions.train import _accumulate

    net = torch.nn.Linear(2, 1, bias=False)
    avg = None
    for n, v in enumerate([1.0, 2.0, 6.0], start=1):
        with torch.no_grad():
            net.weight.fill_(v)
        avg = _accumulate(net, avg, n)
    assert torch.allclose(avg["weight"], torch.full((1, 2), 3.0))


def test_fit_runs_with_its_threads_and_restores_the_callers(monkeypatch):
    """torch.set_num_threads is process-wide: fit uses ``threads`` inside, then gives the
    caller's setting back."""
    from shopml.sessions import estimator

    seen, real = [], estimator.train_gru4rec
    monkeypatch.setattr(estimator, "train_gru4rec",
                        lambda *a, **k: (seen.append(torch.get_num_threads()), real(*a, **k))[1])
    train, _ = planted_sessions(60)  # at least batch_size (48) sessions
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        SessionRecommender(dim=8, epochs=1, threads=2).fit(train)
        assert seen == [2] and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
