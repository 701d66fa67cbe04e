"""Planted signals for item features (cold-start items) and the repeat gate of SASRec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopml.data.features import ItemFeatures
from shopml.data.sequences import IdMap, Sequences, sequences_from_lists
from shopml.recommend.models import CaserRecommender, SASRecRecommender
from shopml.sessions.estimator import SessionRecommender

N_CAT, PER_CAT = 4, 15


def _category_shop(seed=0, n_users=300, length=8):
    """Every user shops in one category; items ``c{k}-{j}``; the last 2 of each category are
    'new' (never bought in training)."""
    rng = np.random.default_rng(seed)
    items = {c: [f"c{c}-{j}" for j in range(PER_CAT)] for c in range(N_CAT)}
    new = {c: items[c][-2:] for c in range(N_CAT)}
    lists = []
    for u in range(n_users):
        c = u % N_CAT
        lists.append(list(rng.choice(items[c][:-2], size=length)))
    feats = ItemFeatures.from_mapping({i: [f"cat{c}"] for c in range(N_CAT) for i in items[c]})
    return lists, feats, new


@pytest.mark.parametrize("factory", [
    lambda: SASRecRecommender(dim=16, epochs=25, batch_size=64, patience=50, progress=False, threads=1),
    lambda: CaserRecommender(dim=16, L=3, n_h=4, n_v=2, epochs=25, batch_size=64, patience=50, progress=False,
                             threads=1),
    lambda: SessionRecommender(dim=16, n_sample=16, batch_size=16, epochs=8, lr=0.1, threads=1),
], ids=["sasrec", "caser", "gru4rec"])
def test_new_items_are_ranked_by_their_features(factory):
    lists, feats, new = _category_shop()
    model = factory().fit(sequences_from_lists(lists), item_features=feats)
    new_ids = [i for c in range(N_CAT) for i in new[c]]
    model.add_items(new_ids, feats)
    right = 0
    for c in range(N_CAT):
        hist = lists[c][:6]  # a user of category c
        ranked = model.predict([hist], k=len(new_ids), candidates=new_ids)[0]
        right += set(ranked[:2]) == set(new[c])
    assert right == N_CAT, "a new item of the history's category must outrank new items of the others"


def test_without_features_new_items_cannot_be_told_apart():
    lists, _, new = _category_shop()
    model = SASRecRecommender(dim=16, epochs=5, batch_size=64, progress=False, threads=1).fit(sequences_from_lists(lists))
    new_ids = [i for c in range(N_CAT) for i in new[c]]
    scores = [r["score"] for r in model.add_items(new_ids).recommend([lists[0][:6]], k=8, candidates=new_ids)[0]]
    assert max(scores) - min(scores) < 1e-6  # zero vectors: the only honest answer is a tie


def _seqs(lists):
    item_map = IdMap.first_seen(lists)
    from shopml.data.sequences import encode_lists

    indptr, flat = encode_lists(item_map, lists)
    return Sequences(indptr, flat, [f"u{i}" for i in range(len(lists))], item_map)


def _gate(model, lists):
    """Mean logit the repeat head adds to the history's items."""
    net = model.net_
    h = torch.tensor([[model._item_index[i] for i in seq] for seq in lists])
    with torch.no_grad():
        idx, val = net.repeat_terms(h, net.encode(h)[:, -1])
    return float(val[idx >= 0].mean())


def test_repeat_gate_learns_rebuying_and_its_absence():
    rng = np.random.default_rng(1)
    n_items = 60
    # Re-buyers: a staple item after every other purchase.
    rebuy = []
    for u in range(300):
        staple = f"i{u % n_items}"
        seq = []
        for x in rng.choice(n_items, 4):
            seq += [staple, f"i{x}"]
        rebuy.append(seq + [staple])
    # Explorers: a walk forward through the catalogue, never an item twice.
    explore = []
    for u in range(300):
        start = int(rng.integers(0, n_items - 30))
        steps = np.cumsum(rng.integers(1, 3, 9))
        explore.append([f"i{start + s}" for s in steps])
    kw = dict(dim=16, epochs=20, batch_size=64, patience=50, progress=False, threads=1, repeat_head=True)
    m_rebuy = SASRecRecommender(**kw).fit(_seqs(rebuy))
    m_explore = SASRecRecommender(**kw).fit(_seqs(explore))
    assert _gate(m_rebuy, [s[:-1] for s in rebuy[:50]]) > 0.5
    assert _gate(m_explore, [s[:-1] for s in explore[:50]]) < -0.5
    # The staple comes back first when the history is not excluded (protocol B).
    top = m_rebuy.predict([s[:-1] for s in rebuy[:50]], k=1, exclude_seen=False)
    assert np.mean([t[0] == s[-1] for t, s in zip(top, rebuy[:50])]) > 0.9


def test_models_without_the_repeat_head_load_from_older_folders(tmp_path):
    lists, _, _ = _category_shop(n_users=40)
    m = SASRecRecommender(dim=8, epochs=1, progress=False, threads=1, repeat_head=False).fit(sequences_from_lists(lists))
    m.save(tmp_path / "m")
    assert SASRecRecommender.load(tmp_path / "m").net_.repeat is None
