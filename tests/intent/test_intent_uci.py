"""The UCI online-shoppers file: one quick fold of the intent MLP."""

import numpy as np

from shopml.data.public import read_online_shoppers
from shopml.evaluation.metrics import auc
from shopml.intent.tabular import IntentClassifier


def test_reader_counts_and_one_fold(real_file):
    X, y = read_online_shoppers(real_file("online-shoppers", "online_shoppers_intention.csv"))
    assert X.shape == (12330, 17) and int(y.sum()) == 1908
    rng = np.random.default_rng(0)
    test = rng.random(len(y)) < 0.2
    clf = IntentClassifier(n_members=1, epochs=15, patience=3).fit(X.filter(~test), y[~test])
    assert auc(y[test], clf.predict_proba(X.filter(test))) > 0.9
