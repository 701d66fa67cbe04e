"""The UCI online-shoppers file: reader counts and one quick fold of the intent MLP."""

import numpy as np
import pytest

from shopml.intent.tabular import IntentClassifier, _auc, read_shoppers_csv
from shopml.errors import DataError


def test_reader_counts_and_one_fold(real_file):
    X, y = read_shoppers_csv(real_file("online-shoppers", "online_shoppers_intention.csv"))
    assert X.shape == (12330, 17) and int(y.sum()) == 1908
    rng = np.random.default_rng(0)
    test = rng.random(len(y)) < 0.2
    clf = IntentClassifier(n_models=1, epochs=15, patience=3).fit(X.filter(~test), y[~test])
    assert _auc(y[test], clf.predict_proba(X.filter(test))) > 0.9


def test_semicolon_variant_and_bad_number(tmp_path, real_file):
    src = real_file("online-shoppers", "online_shoppers_intention.csv").read_text().splitlines()
    p = tmp_path / "semi.csv"
    p.write_text("\n".join(line.replace(",", ";") for line in src[:50]) + "\n")
    X, y = read_shoppers_csv(p)
    assert X.height == 49
    bad = tmp_path / "bad.csv"
    rows = src[:5]
    rows[3] = "x" + rows[3]
    bad.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="row 4"):
        read_shoppers_csv(bad)
