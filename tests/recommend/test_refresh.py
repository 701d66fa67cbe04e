"""`shopml recommend add-items`: new items join a run through their features, no retraining,
and the benchmark cold-start split holds new items out of training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shopml.cli import main
from shopml.data.features import ItemFeatures
from shopml.data.sequences import sequences_from_lists
from shopml.recommend.models import SASRecRecommender
from shopml.runs import load_run, save_run


def _run(capsys, *argv):
    try:
        main(list(argv))
        code = 0
    except SystemExit as e:  # errors exit 2; success may return without exiting
        code = e.code
    return code, capsys.readouterr()


@pytest.fixture()
def shop_run(tmp_path):
    rng = np.random.default_rng(0)
    cats = {c: [f"c{c}-{j}" for j in range(8)] for c in range(3)}
    lists = [list(rng.choice(cats[u % 3], 6)) for u in range(150)]
    feats = ItemFeatures.from_mapping({i: [f"cat{c}"] for c in cats for i in cats[c]})
    model = SASRecRecommender(dim=16, epochs=20, batch_size=32, patience=50, progress=False, threads=1)
    seqs = sequences_from_lists(lists)
    model.fit(seqs, item_features=feats)
    run = save_run(tmp_path / "run", components={"recommend": model}, items=seqs.item_map.to_list())
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"n0": ["cat0"], "n1": ["cat1"], "n2": ["cat2"], "c0-0": ["cat0"]}))
    return run, new, lists


def test_add_items_refreshes_the_run_in_place(shop_run, capsys):
    run, new, lists = shop_run
    code, out = _run(capsys, "recommend", "add-items", "--run", str(run), "--item-features", str(new), "--json")
    assert code == 0, out.err
    assert json.loads(out.out)["added"] == 3  # c0-0 was known
    loaded = load_run(run)
    model = loaded.get("recommend")
    assert {"n0", "n1", "n2"} <= set(loaded.items) and model.n_items_ == 27
    for c in range(3):  # a category-c shopper gets the new category-c item first among new items
        top = model.predict([lists[c]], k=1, candidates=["n0", "n1", "n2"])[0]
        assert top == [f"n{c}"]


def test_add_items_refuses_bad_targets_with_exit_2(shop_run, tmp_path, capsys):
    run, new, _ = shop_run
    code, out = _run(capsys, "recommend", "add-items", "--run", str(run), "--item-features", str(new),
                     "--out", str(run / "inside"))
    assert code == 2 and "\n" not in out.err.strip()
    empty = save_run(tmp_path / "empty", components={})
    code, out = _run(capsys, "recommend", "add-items", "--run", str(empty), "--item-features", str(new))
    assert code == 2 and "no component that takes new items" in out.err
    code, out = _run(capsys, "recommend", "add-items", "--run", str(run), "--item-features", str(tmp_path / "no.json"))
    assert code == 2 and "not found" in out.err


def test_cold_split_keeps_new_items_out_of_training():
    from shopml.benchmarks.cold_start import cold_split
    from shopml.data.sequences import IdMap, Sequences

    rng = np.random.default_rng(0)
    lists = [[str(x) for x in rng.choice(50, 6)] for _ in range(200)]
    s = sequences_from_lists(lists)
    seqs = Sequences(s.indptr, s.items, s.user_ids, IdMap(s.item_map.to_list()))
    sp = cold_split(seqs, 0.2, seed=1)
    n_old = sp["n_old"]
    assert len(sp["new_ids"]) == 10 and n_old == 40
    assert sp["train"].items.max() <= n_old and (sp["valid"] <= n_old).all()  # nothing new in training
    assert sp["test_hist"].items.max() <= n_old
    t = sp["test"][sp["test"] > 0]
    assert len(t) > 0 and (t > n_old).all()  # every test target is new
    last = [lst[-1] for lst in lists]
    new_ids = set(sp["new_ids"])
    assert (sp["test"] > 0).sum() == sum(x in new_ids for x in last)
    o = sp["test_old"]
    assert ((o > 0) != (sp["test"] > 0)).all()  # every user has exactly one kind of target
    assert (o[o > 0] <= n_old).all()
