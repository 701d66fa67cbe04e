"""Next-click session recommender: GRU4Rec with the official implementation's details.

Constructor defaults follow the official GRU4Rec parameter file for Yoochoose/RSC15 with
cross-entropy and sample sharing (``yoochoose_xe_shared_best``): 480 hidden units, tied
(constrained) embedding, batch 48, 2048 shared negatives drawn by popularity**0.2 with logQ
correction, hidden dropout 0.2, Adagrad with learning rate 0.07, 10 epochs.
:data:`DEFAULTS_YOOCHOOSE` (what the CLI and the benchmark use) is a smaller, faster and
more accurate setting, after the official README's example.

Example:
    >>> sessions = [["a", "b", "c"], ["a", "b"], ["b", "c"]] * 20
    >>> m = SessionRecommender(dim=16, n_sample=2, epochs=3, batch_size=4).fit(sessions)
    >>> m.predict([["a"]], k=1)
    [['b']]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from shopml.sessions.base import SessionRankerBase
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
DEFAULTS_YOOCHOOSE = dict(dim=224, batch_size=80, n_sample=2048, sample_alpha=0.4, logq=1.0, lr=0.05,
                          momentum=0.4, loss="cross-entropy", bpreg=0.0, elu_param=0.0, dropout_hidden=0.05,
                          dropout_embed=0.5, skip=False, epochs=10, average_from=5, average_every=None)  # fmt: skip


class SessionRecommender(SessionRankerBase):
    """GRU4Rec session recommender (scikit-learn style): ``fit(sessions)`` on lists of raw item
    ids, then the next-item base's ``recommend``/``predict``/``evaluate``.

    Args:
        dim: GRU size (= item embedding size; the embedding is tied).
        batch_size: parallel sessions per step.
        n_sample: shared negatives per step (0 = full softmax over all items).
        sample_alpha: negatives are drawn with probability ~ popularity**sample_alpha.
        logq: weight of the logQ correction (1 = full correction, 0 = none); cross-entropy only.
        lr, momentum: Adagrad learning rate and momentum.
        loss: ``"cross-entropy"`` or ``"bpr-max"``; ``bpreg`` and ``elu_param`` (the
            score regularizer and the ELU final activation) apply to bpr-max only.
        dropout_hidden, dropout_embed: dropout rates.
        skip: add the last click's (linearly mapped) embedding to the output state.
        id_dropout: with item features (``fit(..., item_features=...)``), the share of id rows
            dropped per step, so the features learn to score an item alone (cold start).
        epochs: passes over the data; ``max_seconds`` (seconds) may stop earlier.
        average_from: if set, keep the mean of the weights at the end of epochs
            ``average_from``..``epochs`` (weight averaging) instead of the last weights;
            ``average_every`` adds a snapshot every that many steps after that.
        patience: with ``fit(..., valid=...)``, stop after this many epochs without a better
            validation MRR@20 (and keep the best epoch's weights, unless averaging).
        checkpoint_dir: write a checkpoint after every epoch; a rerun resumes from it.
        seed: seeds init, dropout and negative sampling.
        threads: torch threads while fitting (None = leave as is).

    ``history_`` holds one dict per epoch (``epoch``, ``loss``, ``steps``, ``seconds``, ...).
    """

    def __init__(
        self,
        *,
        dim: int = 480,
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
        max_seconds: float | None = None,
        patience: int = 5,
        checkpoint_dir: str | None = None,
        seed: int = 0,
        threads: int | None = None,
        id_dropout: float = 0.1,
    ):
        self.dim, self.batch_size, self.n_sample = dim, batch_size, n_sample
        self.sample_alpha, self.logq, self.lr, self.momentum = sample_alpha, logq, lr, momentum
        self.loss, self.bpreg, self.elu_param = loss, bpreg, elu_param
        self.dropout_hidden, self.dropout_embed, self.skip = dropout_hidden, dropout_embed, skip
        self.epochs, self.average_from, self.average_every, self.max_seconds = epochs, average_from, average_every, max_seconds
        self.patience, self.checkpoint_dir, self.seed, self.threads = patience, checkpoint_dir, seed, threads
        self.id_dropout = id_dropout

    kind = KIND

    def _check_params(self) -> None:
        if self.dim < 1 or self.batch_size < 1 or self.epochs < 1 or self.n_sample < 0:
            raise ConfigError("dim, batch_size and epochs must be >= 1 and n_sample >= 0")
        if not 0 <= self.dropout_hidden < 1 or not 0 <= self.dropout_embed < 1 or not 0 <= self.id_dropout < 1:
            raise ConfigError("dropout rates must be in [0, 1)")
        if self.lr <= 0:
            raise ConfigError("lr must be > 0")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")

    def fit(self, sessions, valid=None, *, item_categories: dict | None = None,
            item_features=None) -> "SessionRecommender":
        """Train on sessions: each a chronological sequence of raw item ids. With ``valid``
        sessions, every next click in them is a validation case (MRR@20 after each epoch,
        early stopping). ``item_features`` (:class:`~shopml.data.features.ItemFeatures`) are
        embedded with the items, and let :meth:`add_items` score items with no clicks yet."""
        self._valid = valid  # read by _fit_indices, which the base's fit calls
        try:
            return super().fit(sessions, item_categories=item_categories, item_features=item_features)
        finally:
            del self._valid

    def _fit_indices(self, indptr, items, valid_targets) -> dict:
        if not (np.diff(indptr) >= 2).any():
            raise ConfigError("training needs at least one session with 2 or more clicks")
        validate = self._validation(getattr(self, "_valid", None))  # none in a refresh
        with torch_threads(self.threads):  # restores the caller's thread count afterwards
            torch.manual_seed(self.seed)
            # validation scores through predict's own path, so the estimator is usable from now on
            self.net_ = self._build_net()
            t0 = time.perf_counter()
            result = train_gru4rec(
                self.net_, indptr, items, self.pop_,
                epochs=self.epochs, batch_size=self.batch_size, n_sample=self.n_sample,
                sample_alpha=self.sample_alpha, logq=self.logq, lr=self.lr, momentum=self.momentum,
                loss=self.loss, bpreg=self.bpreg, elu_param=self.elu_param, seed=self.seed,
                max_seconds=self.max_seconds, average_from=self.average_from, average_every=self.average_every,
                validate=validate, patience=self.patience, checkpoint_dir=self.checkpoint_dir,
            )  # fmt: skip
        self.history_, self.train_seconds_ = result.history, time.perf_counter() - t0
        return {"history": self.history_, "train_seconds": self.train_seconds_}

    def _build_net(self) -> GRU4RecNet:
        net = GRU4RecNet(self.n_items_, self.dim, self.dropout_hidden, self.dropout_embed, self.skip,
                         n_tokens=self._n_tokens(), id_dropout=getattr(self, "id_dropout", 0.0))
        self._set_tokens(net)
        return net

    @staticmethod
    def _tables(net):
        return [] if net.features is None else [net.features]

    def _grow(self, n_old: int, n_new: int) -> bool:
        """New items get zero id rows (so, with features, their vector is their features) and
        the median output bias: the bias is the net's popularity prior, and an item with no
        clicks yet is given that of a typical item rather than of the rarest or the top."""
        net = self.net_
        with torch.no_grad():
            bias = net.bias.weight[1:].median()
            net.item = torch.nn.Embedding.from_pretrained(
                torch.cat([net.item.weight, net.item.weight.new_zeros(n_new, self.dim)]), freeze=False, sparse=True)
            net.bias = torch.nn.Embedding.from_pretrained(
                torch.cat([net.bias.weight, bias.expand(n_new, 1)]), freeze=False, sparse=True)
        if net.features is not None:
            net.features.grow(n_new, torch.from_numpy(self.item_token_offsets_), torch.from_numpy(self.item_tokens_))
        net.n_items = self.n_items_
        self.pop_ = np.concatenate([self.pop_, np.zeros(n_new)])
        net.eval()
        return True

    def _validation(self, valid: Sequence[Sequence] | None):
        if not valid:
            return None
        prefixes = [s[:t] for s in valid for t in range(1, len(s))]
        targets = [s[t] for s in valid for t in range(1, len(s))]
        if not targets:
            raise ConfigError("valid needs at least one session with 2 or more clicks")
        return lambda net: {k: v for k, v in self.evaluate(prefixes, targets, k=20).items() if "@" in k}

    def _score_encoded(self, prefixes: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return self.net_.score(self.net_.encode(torch.from_numpy(prefixes)))

    def _state(self) -> tuple[dict, dict]:
        return {}, dict(self.net_.state_dict())

    def _restore(self, params: dict, tensors: dict) -> None:
        self.history_ = history_rows(self.fit_info_.get("history"))
        self.train_seconds_ = self.fit_info_.get("train_seconds", 0.0)
        net = self._build_net()
        state = net.state_dict()
        net.load_state_dict({k: torch.from_numpy(np.array(tensors[k])) for k in state})
        self.net_ = net.eval()


def history_rows(history) -> list[dict]:
    """Training history as one dict per epoch; folders saved before the shared loop hold a
    dict of per-epoch lists (``{"loss": [...], "seconds": [...]}``), converted here.

    Example:
        >>> history_rows({"loss": [2.0, 1.5], "averaged_snapshots": 0})
        [{'epoch': 1, 'loss': 2.0}, {'epoch': 2, 'loss': 1.5}]
    """
    if isinstance(history, list):
        return [r for r in history if isinstance(r, dict)]
    if not isinstance(history, dict):
        return []
    cols = {k: v for k, v in history.items() if isinstance(v, list)}
    n = max((len(v) for v in cols.values()), default=0)
    return [{"epoch": i + 1, **{k: v[i] for k, v in cols.items() if i < len(v)}} for i in range(n)]


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
