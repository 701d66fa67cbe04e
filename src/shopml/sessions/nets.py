"""Networks of the session models (no training code here).

* :class:`GRU4RecNet`: the next-click GRU of Hidasi et al. with the details of the official
  GRU4Rec (https://github.com/hidasib/GRU4Rec): one GRU layer whose input embedding is
  *constrained* (tied) to the output item embedding, a per-item output bias, dropout on the
  hidden state that is also what the next step sees, and linear scores (the softmax lives in
  the loss). Embedding tables are sparse so an update touches only the rows used. With item
  features (``n_tokens``), an item's vector is its id row plus the mean embedding of its tokens
  (:class:`~shopml.recommend.nets.ItemTable`, token part only), on the input and output side
  alike, so an item added with features and no interactions is scored through them.

Example:
    >>> import torch
    >>> net = GRU4RecNet(n_items=10, hidden=8)
    >>> h = net.encode(torch.tensor([[0, 3, 4], [1, 2, 5]]))
    >>> net.score(h).shape
    torch.Size([2, 11])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from shopml.recommend.nets import ItemTable

__all__ = ["GRU4RecNet", "glorot_blocks_"]


@torch.no_grad()
def glorot_blocks_(w: torch.Tensor, n_blocks: int = 1) -> torch.Tensor:
    """Uniform(-s, s) init with s = sqrt(6 / (fan_in + fan_out)) computed per gate block.

    GRU weights stack 3 gate matrices; the official code initializes each block as its
    own (in, out) matrix, so the scale uses one block's shape, not the stacked one.
    """
    rows = w.shape[0] // n_blocks
    sigma = math.sqrt(6.0 / (rows + w.shape[1]))
    return w.uniform_(-sigma, sigma)


class GRU4RecNet(nn.Module):
    """GRU4Rec with a constrained embedding.

    Args:
        n_items: number of items; index 0 is padding (its row is never a candidate).
        hidden: GRU size = item embedding size (tied embedding needs them equal).
        dropout_hidden: dropout on the GRU output, which is also the carried state.
        dropout_embed: dropout on the input embedding.
        n_tokens: size of the item-feature vocabulary (0 = no features); the token bags are
            handed over with ``features.set_tokens``.
        id_dropout: with features, the share of id rows dropped in each training step, so the
            token part learns to score an item alone (the cold-start path).
    """

    def __init__(self, n_items: int, hidden: int = 480, dropout_hidden: float = 0.2, dropout_embed: float = 0.0,
                 skip: bool = False, n_tokens: int = 0, id_dropout: float = 0.0):  # fmt: skip
        super().__init__()
        self.n_items, self.hidden, self.skip, self.id_dropout = n_items, hidden, skip, id_dropout
        # One table for input and output items: "constrained embedding" of the official
        # GRU4Rec; ties what the GRU reads to what it ranks and halves the parameters.
        self.item = nn.Embedding(n_items + 1, hidden, sparse=True)
        self.bias = nn.Embedding(n_items + 1, 1, sparse=True)
        self.gru = nn.GRUCell(hidden, hidden)
        self.drop_embed = nn.Dropout(dropout_embed)
        self.drop_hidden = nn.Dropout(dropout_hidden)
        # Dense and small (tokens x hidden): Adagrad's dense path updates it every step.
        self.features = ItemTable(n_items, hidden, n_tokens, ids=False) if n_tokens else None
        if skip:
            # STAMP-like short-term memory: the last click's embedding, mapped, is added to
            # the output state, so exact item-to-item transitions need not pass the gates.
            self.last = nn.Linear(hidden, hidden, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        glorot_blocks_(self.item.weight)
        nn.init.zeros_(self.bias.weight)
        glorot_blocks_(self.gru.weight_ih, 3)
        glorot_blocks_(self.gru.weight_hh, 3)
        nn.init.zeros_(self.gru.bias_ih)
        nn.init.zeros_(self.gru.bias_hh)
        if self.skip:
            nn.init.zeros_(self.last.weight)  # starts as plain GRU4Rec
        if self.features is not None:  # the id rows' scale, so neither part drowns the other
            sigma = math.sqrt(6.0 / sum(self.item.weight.shape))
            with torch.no_grad():
                self.features.tok_emb.weight.uniform_(-sigma, sigma)

    def table(self) -> torch.Tensor:
        """Every item's vector ``[n_items + 1, hidden]``: the id row plus its features' mean."""
        w = self.item.weight
        return w if self.features is None else w + self.features()

    def with_features(self, rows: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Id rows ``rows`` of items ``idx`` with their features added (and, in training, a
        share ``id_dropout`` of the id rows dropped); the rows as they are without features."""
        if self.features is None:
            return rows
        if self.training and self.id_dropout > 0:
            rows = rows * (torch.rand(rows.shape[0], 1) >= self.id_dropout).to(rows.dtype)
        return rows + self.features.token_rows(idx)

    def step(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One GRU step for item indices ``x`` (B,) from state ``h`` (B, H)."""
        e = self.drop_embed(self.with_features(self.item(x), x))
        # The dropped-out output is carried as the state, as in the official code.
        return self.drop_hidden(self.gru(e, h))

    def train_logits(self, h: torch.Tensor, x: torch.Tensor, candidates: torch.Tensor):
        """Step and score only ``candidates`` (the batch's targets + shared negatives).

        Inputs and candidates go through ONE embedding lookup so the sparse gradient of
        the tied table is a single tensor. Returns ``(new_h, logits (B, C))``.
        """
        ids = torch.cat([x, candidates])
        emb = self.with_features(self.item(ids), ids)
        e, out = emb[: len(x)], emb[len(x) :]
        h = self.drop_hidden(self.gru(self.drop_embed(e), h))
        o = h + self.last(e) if self.skip else h
        logits = o @ out.T + self.bias(candidates).T
        return h, logits

    def train_logits_rows(self, h: torch.Tensor, x: torch.Tensor, rows: torch.Tensor, inv: torch.Tensor,
                          bias_rows: torch.Tensor, bias_inv: torch.Tensor):  # fmt: skip
        """:meth:`train_logits` on gathered blocks of the tables, same maths.

        ``rows`` (U, H) are the distinct item rows a step touches and ``inv`` (B + C,) maps
        the inputs (first B = ``len(x)``) and the candidates to them; ``bias_rows`` (V, 1) /
        ``bias_inv`` (C,) the same for the candidates' biases. Scores are computed once per
        distinct row and then spread to the candidate columns, so a negative drawn twice
        costs one row of the matrix product and the gradient lands on the small (U, H) block
        with duplicates summed: no sparse COO gradient to build and coalesce, no (C, H)
        gather. Returns ``(new_h, logits (B, C))``.
        """
        n = len(x)
        e = rows.index_select(0, inv[:n])
        h = self.drop_hidden(self.gru(self.drop_embed(e), h))
        o = h + self.last(e) if self.skip else h
        logits = (o @ rows.T).index_select(1, inv[n:]) + bias_rows.index_select(0, bias_inv).T
        return h, logits

    def encode(self, prefixes: torch.Tensor) -> torch.Tensor:
        """Output state after right-aligned prefixes (B, L), 0 = padding.

        Padding steps keep the state at zero, so a prefix starts from a reset state.
        """
        h = prefixes.new_zeros((prefixes.shape[0], self.hidden), dtype=torch.float32)
        table = self.table()
        for t in range(prefixes.shape[1]):
            x = prefixes[:, t]
            h = torch.where((x > 0).unsqueeze(1), self.gru(table[x], h), h)
        if self.skip:
            h = h + self.last(table[prefixes[:, -1]])
        return h

    def score(self, h: torch.Tensor) -> torch.Tensor:
        """Scores of every item (B, n_items + 1); column 0 (padding) is -inf."""
        s = h @ self.table().T + self.bias.weight.T
        s[:, 0] = -math.inf
        return s
