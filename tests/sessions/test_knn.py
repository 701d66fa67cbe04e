"""Session baselines: popularity, last-item transitions, V-SKNN."""

from __future__ import annotations

import numpy as np
import pytest

from shopml.sessions.baselines import MarkovRecommender, PopularityRecommender, VSKNNRecommender
from shopml.sessions.estimator import load_session_model

TRAIN = [["a", "b", "c"], ["a", "b"], ["b", "c"], ["d", "e"], ["d", "e", "a"], ["x", "a", "b"]]


@pytest.mark.parametrize("cls", [PopularityRecommender, MarkovRecommender, VSKNNRecommender])
def test_fallback_and_load_by_kind(cls, tmp_path):
    """The contract is tests/test_contract.py; here: popularity answers a session with no known
    item, and load_session_model finds the class from the folder's kind."""
    m = cls().fit(TRAIN)
    with pytest.warns(UserWarning, match="unknown item"):
        recs = m.recommend([[], ["zzz"], ["a"]], k=3)
    assert [r[0].get("fallback") for r in recs] == ["popularity", "popularity", None]
    assert all(np.isfinite([x["score"] for x in r]).all() and len(r) == 3 for r in recs)
    m.save(tmp_path / "m")
    again = load_session_model(tmp_path / "m")
    assert type(again) is cls and again.recommend([["a"], ["d"]], k=4) == m.recommend([["a"], ["d"]], k=4)


def test_markov_uses_last_item_transitions():
    m = MarkovRecommender().fit(TRAIN)
    assert m.predict([["d"]], k=1) == [["e"]]
    assert m.predict([["c", "a"]], k=1) == [["b"]]  # the last click decides
    # no transition across a session boundary: "c" (end of session 1) -> "a" (start of 2) is absent
    assert m.trans_[m.item_ids_.index("c") + 1, m.item_ids_.index("a") + 1] == 0


def test_vsknn_weights_recent_clicks_more():
    train = [["p", "q", "t1"]] * 3 + [["r", "s", "t2"]] * 3
    m = VSKNNRecommender(k=3).fit(train)
    # both neighbourhoods match one item; the later click's neighbours win
    def order(session):
        top = m.predict([session], k=6)[0]
        return top.index("t2") < top.index("t1")

    assert order(["p", "s"]) and not order(["s", "p"])


def test_vsknn_samples_the_most_recent_sessions():
    # three old sessions say x -> old, the two most recent say x -> new (file order = time)
    train = [["x", "old"]] * 3 + [["x", "new"]] * 2
    every = VSKNNRecommender(k=10, sample_size=None).fit(train)
    recent = VSKNNRecommender(k=10, sample_size=2).fit(train)
    first = lambda m: next(i for i in m.predict([["x"]], k=3)[0] if i != "x")  # noqa: E731
    assert first(every) == "old" and first(recent) == "new"


def test_vsknn_overlap_similarity_ignores_neighbour_length():
    # cosine favours the short neighbour (a, b); plain overlap counts both neighbours alike
    train = [["a", "b"], ["a", "c", "d", "e", "f", "g", "h", "i"]]
    cos = VSKNNRecommender(k=10, similarity="cosine").fit(train).recommend([["a"]], k=8)[0]
    ovl = VSKNNRecommender(k=10, similarity="overlap").fit(train).recommend([["a"]], k=8)[0]
    score = lambda r, item: next(x["score"] for x in r if x["item_id"] == item)  # noqa: E731
    assert score(cos, "b") > score(cos, "c")
    assert score(ovl, "b") == pytest.approx(score(ovl, "c"), abs=1e-5)


def test_ranks_are_pessimistic_on_ties():
    m = PopularityRecommender().fit([["a", "b"], ["c", "d"]])  # all counts equal
    assert m.rank_targets([["a"]], ["b"]).tolist() == [4.0]
