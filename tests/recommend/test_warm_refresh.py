"""Warm refresh (:meth:`SequentialRecommender.refresh`): a model continues from its weights on
newer histories, learns a transition that only exists in the new period, with a new item, and
keeps what it knew; Caser's user rows follow their users when the histories are replaced."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shopml.data.sequences import IdMap, sequences_from_lists
from shopml.errors import DataError
from shopml.recommend.models import CaserRecommender, SASRecRecommender


def _chains(n_users: int, chain: list[str], rng) -> list[list[str]]:
    """Users walking ``chain`` from a random start, one step after another."""
    out = []
    for _ in range(n_users):
        s = int(rng.integers(0, len(chain) - 3))
        out.append(chain[s: s + int(rng.integers(3, len(chain) - s + 1))])
    return out


@pytest.mark.parametrize("make", [
    lambda: SASRecRecommender(dim=32, epochs=25, patience=50, batch_size=32, progress=False, threads=1),
    lambda: CaserRecommender(dim=32, L=3, epochs=25, patience=50, batch_size=32, progress=False, threads=1),
], ids=["sasrec", "caser"])
def test_refresh_learns_a_new_item_and_keeps_the_old_signal(make):
    rng = np.random.default_rng(0)
    old_chain = [f"a{j}" for j in range(10)]
    new_chain = [f"b{j}" for j in range(6)] + ["fresh"]  # "fresh" only exists in the new period
    before = _chains(200, old_chain, rng) + _chains(100, new_chain[:-1], rng)
    users = [f"u{n}" for n in range(len(before))]
    model = make().fit(sequences_from_lists(before, users))
    assert model.predict([["b3", "b4", "b5"]], k=1) != [["fresh"]]  # unknown before the refresh
    # the new period: 60 newcomers walk the b chain to its new last item
    later = _chains(60, new_chain, rng)
    later = [h if h[-1] == "fresh" else h + ["fresh"] for h in later]
    seqs = sequences_from_lists(before + later, users + [f"n{n}" for n in range(len(later))],
                                item_map=IdMap(model.item_ids_).extended(["fresh"]))
    replay = rng.choice(len(before), 60, replace=False)
    t_before = model.fit_info_["train_seconds"]
    # 120 rows are 4 steps an epoch: without SASRec's repeat head, 8 epochs (32 steps) left
    # "fresh" behind b1, whose score after b5 nothing in the first period had constrained.
    model.refresh(seqs, rows=np.concatenate([np.arange(len(before), len(before) + 60), replay]), epochs=40)
    assert model.fit_info_["mode"] == "warm" and model.fit_info_["rows"] == 120
    assert model.fit_info_["train_seconds"] < t_before  # a few epochs on a sample, not a refit
    assert model.predict([["b3", "b4", "b5"]], k=1) == [["fresh"]]
    hits = sum(model.predict([old_chain[j: j + 3]], k=1)[0] == [old_chain[j + 3]] for j in range(6))
    assert hits >= 5, f"the old chain is forgotten ({hits}/6 next steps right)"


def test_refresh_refuses_an_item_map_that_moves_known_items():
    model = SASRecRecommender(dim=8, epochs=1, progress=False, threads=1).fit(sequences_from_lists([["a", "b"]] * 5))
    with pytest.raises(DataError, match="item map"):
        model.refresh(sequences_from_lists([["b", "a"]] * 5))


def test_caser_user_rows_follow_their_users_when_histories_change():
    rng = np.random.default_rng(1)
    hists = [list(rng.choice([f"i{j}" for j in range(12)], 6)) for _ in range(40)]
    users = [f"u{n}" for n in range(40)]
    model = CaserRecommender(dim=8, L=3, epochs=2, progress=False, threads=1).fit(sequences_from_lists(hists, users))
    before = model.recommend(["u7", "u30"], k=5)
    imap = IdMap(model.item_ids_)
    order = list(reversed(range(40)))  # the same users in another order, plus a new one
    model.set_histories(sequences_from_lists([hists[n] for n in order] + [["i1"]],
                                             [users[n] for n in order] + ["new"], item_map=imap))
    assert model.recommend(["u7", "u30"], k=5) == before
    new_row = torch.tensor([model._user_index["new"] + 1])
    assert torch.equal(model.net_.user_emb(new_row), torch.zeros(1, 8))  # a new user starts unknown
