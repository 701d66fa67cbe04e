"""Next-click session recommender: GRU4Rec with the official implementation's details.

Constructor defaults follow the official GRU4Rec parameter file for Yoochoose/RSC15 with
cross-entropy and sample sharing (``yoochoose_xe_shared_best``): 480 hidden units, tied
(constrained) embedding, batch 48, 2048 shared negatives drawn by popularity**0.2 with logQ
correction, hidden dropout 0.2, Adagrad with learning rate 0.07, 10 epochs.
:data:`DEFAULTS_YOOCHOOSE` (what the CLI and the benchmark use) is a smaller, faster and
more accurate setting, after the official README's example.

Example:
    >>> sessions = [["a", "b", "c"], ["a", "b"], ["b", "c"]] * 20
    >>> m = SessionRecommender(hidden=16, n_sample=2, epochs=3, batch_size=4).fit(sessions)
    >>> m.predict([["a"]], k=1)
    [['b']]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from shopml.artifacts import read_model_dir, write_model_dir
from shopml.sessions.base import SessionRankerBase, build_index, popularity_counts
from shopml.sessions.data import ItemIndex
from shopml.sessions.nets import GRU4RecNet
from shopml.sessions.train import LOSSES, train_gru4rec
from shopml.training import torch_threads
from shopml.errors import ConfigError

__all__ = ["SessionRecommender"]

KIND = "session-gru4rec"

#: Settings of the Yoochoose benchmark: the official GRU4Rec README's RSC15 example (224 units,
#: batch 80, embedding dropout .5, hidden dropout .05, Adagrad lr .05 with momentum .4, 2048
#: negatives by popularity**0.4) with the loss swapped from BPR-max to cross-entropy with full
#: logQ correction; 10 epochs, the weights at the ends of epochs 5-10 averaged. On Yoochoose 1/64
#: (one run each, test file): this .7104/.3141 in 261 s; the README's BPR-max .7122/.3092;
#: the official cross-entropy file (480 units, batch 48, 4 epochs in our time) .6967/.3083;
#: 12 epochs .7095/.3146; 4096 negatives (9 epochs) .7074/.3137 in 358 s. The validation split
#: of ``benchmarks/tune_sessions.py --model gru4rec`` compares this with the BPR-max setting.
DEFAULTS_YOOCHOOSE = dict(hidden=224, batch_size=80, n_sample=2048, sample_alpha=0.4, logq=1.0, lr=0.05,
                          momentum=0.4, loss="cross-entropy", bpreg=0.0, elu_param=0.0, dropout_hidden=0.05,
                          dropout_embed=0.5, skip=False, epochs=10, average_from=5, average_every=None)  # fmt: skip


class SessionRecommender(SessionRankerBase):
    """GRU4Rec session recommender (scikit-learn style).

    Args:
        hidden: GRU size (= item embedding size; the embedding is tied).
        batch_size: parallel sessions per step.
        n_sample: shared negatives per step (0 = full softmax over all items).
        sample_alpha: negatives are drawn with probability ~ popularity**sample_alpha.
        logq: weight of the logQ correction (1 = full correction, 0 = none); cross-entropy only.
        lr, momentum: Adagrad learning rate and momentum.
        loss: ``"cross-entropy"`` or ``"bpr-max"``; ``bpreg`` and ``elu_param`` (the
            score regularizer and the ELU final activation) apply to bpr-max only.
        dropout_hidden, dropout_embed: dropout rates.
        skip: add the last click's (linearly mapped) embedding to the output state.
        epochs: passes over the data; ``time_budget`` (seconds) may stop earlier.
        average_from: if set, keep the mean of the weights at the end of epochs
            ``average_from``..``epochs`` (weight averaging) instead of the last weights;
            ``average_every`` adds a snapshot every that many steps after that.
        seed: seeds init and negative sampling.
        threads: torch threads while fitting (None = leave as is).
    """

    def __init__(
        self,
        *,
        hidden: int = 480,
        batch_size: int = 48,
        n_sample: int = 2048,
        sample_alpha: float = 0.2,
        logq: float = 1.0,
        lr: float = 0.07,
        momentum: float = 0.0,
        loss: str = "cross-entropy",
        bpreg: float = 1.0,
        elu_param: float = 0.5,
        dropout_hidden: float = 0.2,
        dropout_embed: float = 0.0,
        skip: bool = False,
        epochs: int = 10,
        average_from: int | None = None,
        average_every: int | None = None,
        time_budget: float | None = None,
        seed: int = 0,
        threads: int | None = None,
    ):
        self.hidden, self.batch_size, self.n_sample = hidden, batch_size, n_sample
        self.sample_alpha, self.logq, self.lr, self.momentum = sample_alpha, logq, lr, momentum
        self.loss, self.bpreg, self.elu_param = loss, bpreg, elu_param
        self.dropout_hidden, self.dropout_embed, self.skip = dropout_hidden, dropout_embed, skip
        self.epochs, self.average_from, self.average_every, self.time_budget = epochs, average_from, average_every, time_budget
        self.seed, self.threads = seed, threads

    def get_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def _validate(self) -> None:
        if self.hidden < 1 or self.batch_size < 1 or self.epochs < 1 or self.n_sample < 0:
            raise ConfigError("hidden, batch_size and epochs must be >= 1 and n_sample >= 0")
        if not 0 <= self.dropout_hidden < 1 or not 0 <= self.dropout_embed < 1:
            raise ConfigError("dropout rates must be in [0, 1)")
        if self.lr <= 0:
            raise ConfigError("lr must be > 0")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")

    def fit(self, sessions: Sequence[Sequence]) -> "SessionRecommender":
        """Train on sessions: each a chronological sequence of raw item ids."""
        self._validate()
        with torch_threads(int(self.threads) if self.threads else None):
            return self._fit(sessions)

    def _fit(self, sessions: Sequence[Sequence]) -> "SessionRecommender":
        index, indptr, items = build_index(sessions)
        if index.n_items == 0 or not (np.diff(indptr) >= 2).any():
            raise ConfigError("training needs at least one session with 2 or more clicks")
        torch.manual_seed(self.seed)
        net = GRU4RecNet(index.n_items, self.hidden, self.dropout_hidden, self.dropout_embed, self.skip)
        self.pop_ = popularity_counts(items, index.n_items)
        t0 = time.perf_counter()
        self.history_ = train_gru4rec(
            net, indptr, items, self.pop_,
            epochs=self.epochs, batch_size=self.batch_size, n_sample=self.n_sample,
            sample_alpha=self.sample_alpha, logq=self.logq, lr=self.lr, momentum=self.momentum,
            loss=self.loss, bpreg=self.bpreg, elu_param=self.elu_param, seed=self.seed, time_budget=self.time_budget, average_from=self.average_from,
            average_every=self.average_every,
        )  # fmt: skip
        self.train_seconds_ = time.perf_counter() - t0
        self.net_, self.items_ = net, index
        return self

    def _score_encoded(self, prefixes: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return self.net_.score(self.net_.encode(torch.from_numpy(prefixes)))

    def save(self, path) -> None:
        """Write a model folder: params + item ids as JSON, weights as safetensors."""
        self._check_fitted()
        tensors = {k: v for k, v in self.net_.state_dict().items()}
        tensors["pop"] = self.pop_
        meta = {"items": self.items_.ids, "history": self.history_, "train_seconds": self.train_seconds_}
        write_model_dir(path, kind=KIND, params=self.get_params(), tensors=tensors, meta=meta)

    @classmethod
    def load(cls, path) -> "SessionRecommender":
        """Load a folder written by :meth:`save` (no pickle)."""
        md = read_model_dir(Path(path), kind=KIND)
        self = cls(**md.params)
        self.items_ = ItemIndex(md.meta["items"])
        self.pop_ = md.tensors.pop("pop")
        self.history_, self.train_seconds_ = md.meta.get("history", {}), md.meta.get("train_seconds", 0.0)
        net = GRU4RecNet(self.items_.n_items, self.hidden, self.dropout_hidden, self.dropout_embed, self.skip)
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in md.tensors.items()})
        self.net_ = net.eval()
        return self


def session_model(name: str, **params):
    """Build a next-click model by CLI name: gru4rec, vsknn, markov or pop.

    Example:
        >>> type(session_model("markov")).__name__
        'MarkovRecommender'
    """
    from shopml.sessions.baselines import MarkovRecommender, PopularityRecommender, VSKNNRecommender

    classes = {"gru4rec": SessionRecommender, "vsknn": VSKNNRecommender, "markov": MarkovRecommender, "pop": PopularityRecommender}
    if name not in classes:
        raise ConfigError(f"unknown session model {name!r}; choose from {', '.join(classes)}")
    return classes[name](**params)


def load_session_model(path):
    """Load any next-click model folder (the kind in model.json picks the class)."""
    import json

    from shopml.sessions.baselines import MarkovRecommender, PopularityRecommender, VSKNNRecommender
    from shopml.errors import ArtifactError

    classes = {c.kind: c for c in (MarkovRecommender, PopularityRecommender, VSKNNRecommender)}
    classes[KIND] = SessionRecommender
    manifest = Path(path) / "model.json"
    try:
        kind = json.loads(manifest.read_text()).get("kind")
    except (OSError, ValueError):
        raise ArtifactError(f"{path}: not a shopml model folder (model.json missing or corrupted)") from None
    if kind not in classes:
        raise ArtifactError(f"{manifest}: holds a {kind!r} model, not a session model")
    return classes[kind].load(path)
