"""SASRec and Caser estimators: ``fit(sequences)``, ``recommend``, ``save``/``load``.

Both train with cross-entropy over the **full catalogue** (Klenitskiy & Vasilev 2023, "Turning
Dross Into Gold Loss: is BERT4Rec really better than SASRec?": full CE beats SASRec's original
one-negative binary loss by a wide margin). For catalogues too large for a full softmax per
target, ``loss="sampled"`` switches to sampled softmax: ``n_negatives`` items drawn uniformly
per batch and shared by all its targets (uniform sampling needs no log-Q correction; accidental
hits of the target are masked). Rule of thumb: keep ``"ce"`` while ``batch targets x n_items``
fits in memory (a few hundred thousand items at batch 128), use ``"sampled"`` beyond.

``loss="sampled-ce"`` trains with the sampled softmax until the first plateau, then with the
full softmax from the best weights, at 0.3x the learning rate and with a fresh optimizer state.
It is not the default, because it was chosen against on validation. On Beauty with features,
2,048 negatives and a patience of 2 reached the best validation after 349 s, against 590 s for
the full softmax. Its NDCG@10 was lower, though: .0668 on validation (against .0672) and .0561
on test (A). Sampled alone plateaued at .0648 on validation. A higher learning rate (5e-3:
.0643), batches of 128 (.0663) and a 10-epoch cosine schedule (.0522) did not reach .0672
sooner either.

Speed (pre-built index tensors, see :mod:`shopml.training`): batches are bucketed by length and
trimmed to their longest sequence, and logits are computed only at positions that have a target,
so padding costs nothing. Where the time goes on Beauty with features (2 CPU threads,
``python benchmarks/profile_sasrec_epoch.py``: one epoch with its validation, 15.8 s in that
run; this machine's speed drifts, the same epoch has taken 16-40 s): the full-catalogue softmax
(forward and backward over 12,101 items, :mod:`shopml.recommend.losses`) 9.1 s, most of it
matrix products; the rest is the transformer, dropout masks, the feature bags and the
full-ranking validation of 22,363 users (~3.9 s).

Item features (``fit(..., item_features=ItemFeatures)``): every item table adds the mean
embedding of the item's tokens to its id embedding (:class:`~shopml.recommend.nets.ItemTable`),
and ``id_dropout`` drops a tenth of the id rows per step so the features learn to stand alone;
an item added after training (:meth:`add_items`) is then scored through its features. SASRec's
optional repeat head (``repeat_head=True``; off by default, the window repeat gate of
:mod:`shopml.recommend.repeat_gate` does its job) adds a learned logit to each history item from the state and
the item's count and recency, trained with the same full softmax: a user who re-buys gets
their items back, a catalogue where nobody re-buys learns to push them down. The softmax runs in
row chunks (:mod:`shopml.recommend.losses`), so a batch's memory is one chunk's logits.
``device="cuda"`` trains on a GPU; the fitted net always comes back to the CPU.

Recipe (the same for every dataset): AdamW at lr 2e-3 and batch 256 until validation NDCG@10
stalls for ``patience`` epochs; then once back to the best weights at 0.3x lr (``lr_decays``);
then ``refit_epochs`` epochs at 0.3x lr on the histories including the validation item.
``decay_patience=1`` decays at the first epoch without a new best instead. It is not the
default: on Beauty it reached .0676 on validation (against .0672) but no sooner (455 s against
453 s), and in the fit job on Online Retail (patience 10) it trained 315 s instead of 84 s for
.0724 against .0722 on validation and .0681 against .0701 on test (A).

Example:
    >>> from shopml.recommend.base import sequences_from_lists
    >>> seqs = sequences_from_lists([["a", "b", "c"]] * 20 + [["c", "b", "a"]] * 20)
    >>> m = SASRecRecommender(dim=16, epochs=2, progress=False).fit(seqs)
    >>> len(m.recommend([["a", "b"]], k=1)[0])
    1
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shopml.data.sequences import append_targets, pad_left
from shopml.errors import ConfigError
from shopml.evaluation.protocols import evaluate
from shopml.recommend.base import SequentialRecommender
from shopml.recommend.losses import chunked_cross_entropy, fast_bf16
from shopml.recommend.nets import Caser, SASRec
from shopml.training import Hooks, IndexBatches, TrainConfig, train

__all__ = ["SASRecRecommender", "CaserRecommender"]


#: ``ce``: full-catalogue softmax; ``sampled``: softmax over ``n_negatives`` shared random
#: items; ``sampled-ce``: sampled until the first plateau, full from there on (and in the
#: refit and refreshes), the early epochs at about half the cost.
LOSSES = ("ce", "sampled", "sampled-ce")


class _LossPhase(Hooks):
    """The phase of ``loss="sampled-ce"``: sampled until the first learning-rate decay."""

    def __init__(self, sampled: bool):
        self.sampled = sampled

    def on_decay(self, model, opt, decays: int) -> None:
        if self.sampled:
            # Adam's moments are those of the sampled loss's gradients, another scale: start the
            # full softmax with a fresh optimizer state, as a separate fit from these weights would.
            opt.state.clear()
        self.sampled = False

    def state_dict(self) -> dict:
        return {"sampled": self.sampled}

    def load_state_dict(self, state: dict) -> None:
        self.sampled = bool(state.get("sampled", self.sampled))


class _NeuralRecommender(SequentialRecommender):
    """Shared fit/persistence of the neural models; subclasses build nets, tensors and losses."""

    def _train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay,
                           batch_size=self.batch_size, patience=self.patience, seed=self.seed,
                           checkpoint_dir=self.checkpoint_dir, progress=self.progress, threads=self.threads,
                           lr_decay=0.3, max_decays=getattr(self, "lr_decays", 0),
                           decay_patience=getattr(self, "decay_patience", None),
                           max_seconds=self.max_seconds, device=getattr(self, "device", "cpu"))

    def _check_params(self) -> None:
        from shopml.training import check_device

        check_device(getattr(self, "device", "cpu"))
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(map(repr, LOSSES))}, got {self.loss!r}")
        if getattr(self, "precision", "fp32") not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")

    def _grow(self, n_old: int, n_new: int) -> bool:
        off = torch.from_numpy(self.item_token_offsets_) if self._n_tokens() else None
        tok = torch.from_numpy(self.item_tokens_) if self._n_tokens() else None
        for table in self._tables(self.net_):
            table.grow(n_new, off, tok)
        self.net_.n_items = self.n_items_
        self.net_.eval()
        self.pop_ = np.concatenate([self.pop_, np.zeros(n_new)])  # no interactions yet
        return True

    def _fit_indices(self, indptr, items, valid_targets) -> dict:
        torch.manual_seed(self.seed)
        self.net_ = self._build_net(len(indptr) - 1)
        self._set_tokens(self.net_)
        batches = self._training_tensors(indptr, items)
        validate = None
        if valid_targets is not None:
            def validate(net):  # noqa: E306 - protocol A NDCG@10 on the held-out item
                fn = lambda h, u: self._net_score(net, h, u)  # noqa: E731
                return evaluate(fn, indptr, items, valid_targets, ks=(10,), protocols=("A",),
                                n_items=self.n_items_)["A"]
        # without validation there is no plateau to end the sampled phase: full softmax throughout
        self._phase = _LossPhase(self.loss == "sampled-ce" and validate is not None)
        result = train(self.net_, self._loss, batches, validate=validate, config=self._train_config(),
                       hooks=self._phase)
        self._phase = None  # the refit and any refresh train with the full softmax
        refit_s = self._refit(indptr, items, valid_targets)
        self.net_.cpu().eval()  # served and saved on the CPU, wherever it trained
        return {"refit_epochs": self.refit_epochs if refit_s else 0, "refit_seconds": refit_s,
                "epochs": result.epochs, "best_epoch": result.best_epoch, "out_of_time": result.out_of_time, "best_score": result.best_score,
                "train_seconds": result.seconds, "seconds_to_best": result.seconds_to_best,
                "history": result.history}

    def _refresh_indices(self, indptr, items, rows, epochs: int, lr_scale: float) -> dict:
        """Warm start: ``epochs`` epochs at ``lr_scale`` x the learning rate from the current
        weights, on the histories of ``rows`` only; the other rows stay in the CSR with no
        events, so row numbers (Caser's user rows) do not move."""
        keep = np.zeros(len(indptr) - 1, dtype=bool)
        keep[rows] = True
        sel = np.repeat(keep, np.diff(indptr))
        lens = np.where(keep, np.diff(indptr), 0)
        if not (lens >= 2).any():  # nothing new to learn from: the weights stay as they are
            return {"epochs": 0, "train_seconds": 0.0, "rows": int(keep.sum()), "out_of_time": False}
        sub_ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        self._set_tokens(self.net_)
        cfg = replace(self._train_config(), epochs=max(epochs, 1), lr=self.lr * lr_scale, max_decays=0,
                      seed=self.seed + 2, checkpoint_dir=None)
        result = train(self.net_, self._loss, self._training_tensors(sub_ptr, items[sel]), config=cfg)
        self.net_.cpu().eval()
        return {"epochs": result.epochs, "train_seconds": result.seconds, "rows": int(keep.sum()),
                "out_of_time": result.out_of_time}

    def _refit(self, indptr, items, valid_targets) -> float:
        """After early stopping, train ``refit_epochs`` more epochs at 0.3x the learning rate on
        the histories *including* the validation item, so the model also learns the most recent
        transitions (the baselines count them too). The test item is never seen. Returns seconds."""
        if valid_targets is None or not self.refit_epochs:
            return 0.0
        p2, i2 = append_targets(indptr, items, valid_targets)
        cfg = replace(self._train_config(), epochs=self.refit_epochs, lr=self.lr * 0.3, max_decays=0,
                      max_seconds=None, seed=self.seed + 1,
                      checkpoint_dir=None if self.checkpoint_dir is None else str(Path(self.checkpoint_dir) / "refit"))
        return train(self.net_, self._loss, self._training_tensors(p2, i2), config=cfg).seconds

    def _full_softmax(self) -> bool:
        if self.loss == "sampled-ce":
            phase = getattr(self, "_phase", None)
            return phase is None or not phase.sampled
        return self.loss == "ce"

    def _bf16(self) -> bool:
        precision = getattr(self, "precision", "fp32")
        return precision == "bf16" or (precision == "auto" and fast_bf16(getattr(self, "device", "cpu")))

    def _logits(self, net, h: torch.Tensor, targets: torch.Tensor, w=None, repeat=None) -> torch.Tensor:
        """CE loss of states ``h [T, d]`` against ``targets [T]`` (full or sampled softmax);
        ``w`` the output item table when the caller has it, ``repeat`` the repeat head's
        ``(items [T, L], logits [T, L])`` (full CE only). The full softmax runs in
        row chunks (:func:`~shopml.recommend.losses.chunked_cross_entropy`), so its memory is
        one chunk's logits, not the batch's."""
        w0, b = self._output_weights(net)
        w = w0 if w is None else w
        if self._full_softmax():
            idx, val = repeat if repeat is not None else (None, None)
            return chunked_cross_entropy(h, w[1:], None if b is None else b[1:], targets - 1, idx, val,
                                         bf16=self._bf16())
        neg = torch.randint(1, self.n_items_ + 1, (self.n_negatives,))
        pos = (h * w[targets]).sum(1, keepdim=True) + (b[targets, None] if b is not None else 0.0)
        negl = h @ w[neg].T + (b[neg] if b is not None else 0.0)
        negl = negl.masked_fill(neg[None, :] == targets[:, None], float("-inf"))
        return F.cross_entropy(torch.cat([pos, negl], 1), torch.zeros(len(h), dtype=torch.long))

    def _score(self, hist, users):
        self.net_.eval()
        return self._net_score(self.net_, hist, users)

    @staticmethod
    def _on(net, *tensors):
        """``tensors`` on ``net``'s device (validation runs while the net is on the GPU)."""
        dev = next(net.parameters()).device
        return tensors if dev.type == "cpu" else tuple(t.to(dev) for t in tensors)

    def _state(self):
        return {"n_users_net": self.n_users_net_}, {f"net.{k}": v for k, v in self.net_.state_dict().items()}

    def _restore(self, params, tensors):
        if hasattr(self, "repeat_head") and "net.repeat.weight" not in tensors:
            self.repeat_head = False  # folders saved before the repeat head
        self.n_users_net_ = params.get("n_users_net", 0)
        self.net_ = self._build_net(self.n_users_net_)
        self._set_tokens(self.net_)
        sd = {k[4:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("net.")}
        for name in ("item_emb", "out_emb"):  # folders saved before item tables had features
            if f"{name}.weight" in sd:
                sd[f"{name}.id_emb.weight"] = sd.pop(f"{name}.weight")
        self.net_.load_state_dict(sd)
        self.net_.eval()


class SASRecRecommender(_NeuralRecommender):
    """SASRec trained with full cross-entropy (or sampled, or sampled then full: ``loss``) and
    early stopping.

    Example:
        >>> SASRecRecommender(dim=32).dim
        32
    """

    kind = "recommend.sasrec"

    def __init__(self, dim: int = 64, max_len: int = 50, n_layers: int = 2, n_heads: int = 1,
                 dropout: float = 0.5, epochs: int = 200, lr: float = 2e-3, weight_decay: float = 0.0,
                 batch_size: int = 256, patience: int = 3, lr_decays: int = 1, loss: str = "ce",
                 n_negatives: int = 1024, seed: int = 0, threads: int | None = 2, checkpoint_dir: str | None = None,
                 progress: bool = True,
                 max_seconds: float | None = None, refit_epochs: int = 2, repeat_head: bool = False,
                 id_dropout: float = 0.1, device: str = "cpu", decay_patience: int | None = None,
                 precision: str = "auto"):
        # "bf16": the full softmax's three products in bfloat16 (float32 softmax and sums);
        # "auto": bf16 where the hardware runs it natively (AVX512-BF16, a bf16 GPU), else
        # "fp32". On Beauty bf16 reached the best validation 17% sooner (159 s against 191 s),
        # at validation NDCG@10 .0673 against .0672 and test .0583 against .0584.
        self.precision = precision
        self.device = device  # where training runs ("cuda" when a GPU is there); served on the CPU
        self.max_seconds = max_seconds  # wall-time budget for training (best weights kept)
        self.refit_epochs = refit_epochs  # epochs on train + validation item after early stopping
        self.lr_decays = lr_decays  # plateaus that restore the best weights and cut lr by 0.3x
        self.decay_patience = decay_patience  # epochs without a new best before a decay (None: patience)
        # A learned in-network logit for history items. Off by default: the window repeat gate
        # (recommend/repeat_gate.py, fitted on validation) does that job, and without the head
        # validation NDCG@10 (A) was higher on both logs measured (Beauty .0672 vs .0667,
        # Online Retail .0722 vs .0667).
        self.repeat_head = repeat_head
        self.id_dropout = id_dropout  # with item features: share of id embeddings dropped per step
        self.dim, self.max_len, self.n_layers, self.n_heads, self.dropout = dim, max_len, n_layers, n_heads, dropout
        self.epochs, self.lr, self.weight_decay, self.batch_size, self.patience = (
            epochs, lr, weight_decay, batch_size, patience)
        self.loss, self.n_negatives, self.seed, self.threads = loss, n_negatives, seed, threads
        self.checkpoint_dir, self.progress = checkpoint_dir, progress

    def _build_net(self, n_users: int) -> SASRec:
        self.n_users_net_ = 0  # SASRec has no user embedding
        return SASRec(self.n_items_, self.dim, self.max_len, self.n_layers, self.n_heads, self.dropout,
                      n_tokens=self._n_tokens(), id_dropout=self.id_dropout, repeat=self.repeat_head)

    @staticmethod
    def _tables(net):
        return [net.item_emb]

    def _training_tensors(self, indptr, items) -> IndexBatches:
        """One row per user with >= 2 items: inputs = items[:-1], targets = items[1:], both
        the last ``max_len``, left-padded and aligned."""
        lens = np.diff(indptr)
        rows = np.flatnonzero(lens >= 2)
        starts, ends = indptr[rows], indptr[rows + 1]
        inp = torch.from_numpy(pad_left(items, starts, ends - 1, self.max_len))
        tgt = torch.from_numpy(pad_left(items, starts + 1, ends, self.max_len))
        n = torch.from_numpy(np.minimum(lens[rows] - 1, self.max_len))
        return IndexBatches(inp, tgt, n, lengths=n)

    def _loss(self, net, batch):
        inp, tgt, n = batch
        width = int(n.max())  # trim the batch to its longest sequence (bucketed batches)
        inp, tgt = inp[:, -width:], tgt[:, -width:]
        table = net.item_emb()  # once per step: with features it is an EmbeddingBag pass
        h = net.encode(inp, table)
        keep = tgt != 0  # logits only where there is a target
        h = h[keep]
        repeat = None
        if net.repeat is not None and self._full_softmax():
            # The history of the target at position t is inputs ..t of its row: the window of
            # `width` items ending at t, right-aligned like a request-time history.
            windows = F.pad(inp, (width - 1, 0)).unfold(1, width, 1)  # [B, width, width]
            repeat = net.repeat_terms(windows[keep], h)
        return self._logits(net, h, tgt[keep], w=table, repeat=repeat)

    def _output_weights(self, net):
        return net.item_emb(), None  # tied input/output embeddings

    def _net_score(self, net, hist, users):
        (hist,) = self._on(net, hist[:, -self.max_len :])
        return net.score(hist).cpu()


class CaserRecommender(_NeuralRecommender):
    """Caser with cross-entropy over the catalogue, a longer window ``L`` and dropout.

    Known users (by row) get their user embedding; request-time histories use the zero
    "unknown user" embedding.

    Example:
        >>> CaserRecommender(L=5).L
        5
    """

    kind = "recommend.caser"

    def __init__(self, dim: int = 64, L: int = 10, n_h: int = 16, n_v: int = 4, dropout: float = 0.5,
                 epochs: int = 100, lr: float = 2e-3, weight_decay: float = 0.0, batch_size: int = 256,
                 patience: int = 3, loss: str = "ce", n_negatives: int = 1024, seed: int = 0,
                 threads: int | None = 2, checkpoint_dir: str | None = None, progress: bool = True,
                 max_seconds: float | None = None, refit_epochs: int = 2, id_dropout: float = 0.1,
                 device: str = "cpu"):
        self.device = device  # where training runs ("cuda" when a GPU is there); served on the CPU
        self.max_seconds = max_seconds  # wall-time budget for training (best weights kept)
        self.refit_epochs = refit_epochs  # epochs on train + validation item after early stopping
        self.id_dropout = id_dropout  # with item features: share of id embeddings dropped per step
        self.dim, self.L, self.n_h, self.n_v, self.dropout = dim, L, n_h, n_v, dropout
        self.epochs, self.lr, self.weight_decay, self.batch_size, self.patience = (
            epochs, lr, weight_decay, batch_size, patience)
        self.loss, self.n_negatives, self.seed, self.threads = loss, n_negatives, seed, threads
        self.checkpoint_dir, self.progress = checkpoint_dir, progress

    def _build_net(self, n_users: int) -> Caser:
        self.n_users_net_ = n_users
        return Caser(self.n_items_, n_users, self.dim, self.L, self.n_h, self.n_v, self.dropout,
                     n_tokens=self._n_tokens(), id_dropout=self.id_dropout)

    @staticmethod
    def _tables(net):
        return [net.item_emb, net.out_emb]

    def _grow(self, n_old: int, n_new: int) -> bool:
        super()._grow(n_old, n_new)
        old = self.net_.out_bias.weight.data
        self.net_.out_bias = torch.nn.Embedding(old.shape[0] + n_new, 1)
        with torch.no_grad():  # a new item starts at the mean bias: no evidence either way
            self.net_.out_bias.weight[: old.shape[0]] = old
            self.net_.out_bias.weight[old.shape[0] :] = old[1:].mean()
        return True

    def _remap_users(self, old_users: list) -> None:
        """User rows follow ``user_ids_``: a known user keeps its embedding, a new one starts
        at zero (the unknown user) and learns in a refresh."""
        if getattr(self, "net_", None) is None:
            return
        index = {u: n + 1 for n, u in enumerate(old_users[: self.n_users_net_])}
        src = torch.tensor([index.get(u, 0) for u in self.user_ids_], dtype=torch.long)
        old = self.net_.user_emb.weight.data
        emb = torch.nn.Embedding(len(self.user_ids_) + 1, old.shape[1], padding_idx=0)
        with torch.no_grad():
            emb.weight[0] = 0.0
            emb.weight[1:] = old[src]
        self.net_.user_emb = emb
        self.n_users_net_ = len(self.user_ids_)

    def _training_tensors(self, indptr, items) -> IndexBatches:
        """One sample per event after a user's first: the previous ``L`` items, user row, target."""
        lens = np.diff(indptr)
        user = np.repeat(np.arange(len(lens)), lens)
        pos = np.arange(len(items)) - indptr[user]
        ev = np.flatnonzero(pos >= 1)
        starts = np.maximum(indptr[user[ev]], ev - self.L)
        window = torch.from_numpy(pad_left(items, starts, ev, self.L))
        return IndexBatches(window, torch.from_numpy(user[ev] + 1), torch.from_numpy(items[ev]))

    def _loss(self, net, batch):
        window, users, tgt = batch
        return self._logits(net, net.encode(window, users), tgt)

    def _output_weights(self, net):
        return net.out_emb(), net.out_bias.weight[:, 0]

    def _net_score(self, net, hist, users):
        users = torch.where(users <= self.n_users_net_, users, torch.zeros_like(users))
        hist, users = self._on(net, hist[:, -self.L :], users)
        return net.score(hist, users).cpu()
