"""The window repeat gate: fitted on a window where users re-buy their staple, it learns a
positive worth for often-bought history items and brings the staple back first; items
outside the history keep their scores, so protocol A cannot move; it survives save/load."""

from __future__ import annotations

import numpy as np
import torch

from shopml.data.sequences import sequences_from_lists
from shopml.recommend.baselines import MostPopular
from shopml.recommend.repeat_gate import gate_features
from shopml.recommend.window_value import window_gate


def _rebuyers(n_users=300, seed=0):
    """Each user bought a staple 3-5 times among random items; the window holds the staple."""
    rng = np.random.default_rng(seed)
    items = [f"i{j}" for j in range(60)]
    hists, staples = [], []
    for _ in range(n_users):
        staple = items[int(rng.integers(0, 60))]
        h = list(rng.choice(items, 8)) + [staple] * int(rng.integers(3, 6))
        rng.shuffle(h)
        hists.append(h)
        staples.append(staple)
    return sequences_from_lists(hists, [f"u{n}" for n in range(n_users)]), staples


def _targets(seqs, staples):
    idx = seqs.item_map.encode(staples)
    return np.arange(len(staples) + 1, dtype=np.int64), idx.astype(np.int64)


def test_the_gate_learns_that_staples_come_back(tmp_path):
    seqs, staples = _rebuyers()
    model = MostPopular().fit(seqs)
    t_ptr, t_items = _targets(seqs, staples)
    before = np.mean([p[0] == s for p, s in zip(model.predict(seqs.user_ids, k=1, exclude_seen=False), staples)])
    gate = window_gate(model, seqs, t_ptr, t_items)
    assert gate[0] > 0 and gate[2] > 0.5, gate  # T, then in-history, log count, recency
    model.repeat_gate_ = gate
    after = np.mean([p[0] == s for p, s in zip(model.predict(seqs.user_ids, k=1, exclude_seen=False), staples)])
    assert before < 0.2 and after > 0.9, (before, after)
    # items outside the history are untouched: protocol A ranks exactly as before
    hist = torch.tensor([[0, 0, 1, 2]])
    plain = MostPopular().fit(seqs).score_batch(hist)
    gated = model.score_batch(hist)
    assert torch.equal(plain[0, 3:], gated[0, 3:]) and gated[0, 1] > plain[0, 1]
    model.save(tmp_path / "m")
    assert MostPopular.load(tmp_path / "m").repeat_gate_ == gate


def test_features_count_every_occurrence_and_the_latest_position():
    f = gate_features(torch.tensor([[0, 0, 5, 5, 5, 1], [2, 2, 2, 2, 2, 2]]), 7)
    assert f[0, 5].tolist()[0] == 1.0 and abs(f[0, 5, 1].item() - np.log(3)) < 1e-6
    assert abs(f[0, 5, 2].item() - 0.5) < 1e-6 and f[0, 1, 2].item() == 1.0
    assert f[1, 2, 2].item() == 1.0 and f[0, 0].abs().sum() == 0 and f[1, 3].abs().sum() == 0


def test_the_gate_strength_is_the_one_with_the_best_protocol_b_on_the_window():
    from shopml.evaluation.protocols import evaluate_windows

    seqs, staples = _rebuyers(seed=1)
    model = MostPopular().fit(seqs)
    t_ptr, t_items = _targets(seqs, staples)
    fitted = window_gate(model, seqs, t_ptr, t_items, strengths=(1.0,))
    strengths = (0.0, 0.05, 1.0, 4.0)
    chosen = window_gate(model, seqs, t_ptr, t_items, strengths=strengths)

    def b_ndcg(gate):
        model.repeat_gate_ = gate
        return evaluate_windows(model.score_batch, seqs.indptr, seqs.items, t_ptr, t_items, k=10,
                                n_items=model.n_items_)["B"]["ndcg@10"]

    scores = {c: b_ndcg([fitted[0], *(c * w for w in fitted[1:])]) for c in strengths}
    best = max(scores.values())
    assert scores[0.0] < best  # no gate loses where users re-buy
    c = next(c for c in strengths if scores[c] == best)  # the first (weakest) of the best
    assert np.allclose(chosen, [fitted[0], *(c * w for w in fitted[1:])])
