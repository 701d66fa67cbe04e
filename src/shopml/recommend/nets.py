"""The sequence networks of shopml.recommend: SASRec (causal transformer) and Caser (CNN).

Both take left-padded item-index histories ``LongTensor[B, L]`` (0 = padding, items
``1..n_items``) and return scores over the whole catalogue ``[B, n_items + 1]`` (column 0 is
the padding column and always ``-inf``). No training code lives here; the estimators in
:mod:`shopml.recommend.models` own the losses.

Example:
    >>> import torch
    >>> net = SASRec(n_items=20, dim=16, max_len=8)
    >>> net.score(torch.tensor([[0, 0, 3, 4], [1, 2, 3, 4]])).shape
    torch.Size([2, 21])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SASRec", "Caser", "ItemTable"]


class ItemTable(nn.Module):
    """Item vectors ``[n_items + 1, dim]``: an id embedding plus, with item features, the mean
    embedding of each item's tokens (:class:`shopml.data.features.ItemFeatures`).

    An item with features but no interactions (a cold-start item, added by :meth:`grow`) has a
    zero id row, so its vector is its features alone. ``id_dropout`` drops the id part of a
    random share of items in each training forward, which teaches the feature part to stand on
    its own. Row 0 is padding (zero). ``ids=False`` keeps the token part only, for a net that
    manages its own id table (GRU4Rec's sparse one).

    Example:
        >>> t = ItemTable(3, 4, n_tokens=2)
        >>> t.set_tokens(torch.tensor([0, 0, 1, 2, 2]), torch.tensor([1, 2]))
        >>> t().shape, t.token_rows(torch.tensor([2, 3])).shape
        (torch.Size([4, 4]), torch.Size([2, 4]))
    """

    def __init__(self, n_items: int, dim: int, n_tokens: int = 0, id_dropout: float = 0.0, std: float = 0.02,
                 ids: bool = True):
        super().__init__()
        self.n_tokens, self.id_dropout, self.std, self.dim = n_tokens, id_dropout, std, dim
        self.n_rows = n_items + 1
        self.id_emb = nn.Embedding(n_items + 1, dim, padding_idx=0) if ids else None
        if ids:
            nn.init.normal_(self.id_emb.weight, std=std)
            with torch.no_grad():
                self.id_emb.weight[0].zero_()
        if n_tokens:
            self.tok_emb = nn.EmbeddingBag(n_tokens + 1, dim, mode="mean", padding_idx=0)
            nn.init.normal_(self.tok_emb.weight, std=std)
            # Not in the state dict: the estimator stores the token bags once and hands them over.
            self.register_buffer("offsets", torch.zeros(n_items + 2, dtype=torch.long), persistent=False)
            self.register_buffer("tokens", torch.zeros(0, dtype=torch.long), persistent=False)

    @property
    def weight(self) -> torch.Tensor:
        return self()

    def set_tokens(self, offsets: torch.Tensor, tokens: torch.Tensor) -> None:
        """CSR token bags for rows 0..n_items (``offsets`` has n_items + 2 entries)."""
        self.offsets, self.tokens = offsets.long(), tokens.long()

    def forward(self) -> torch.Tensor:
        feats = self.tok_emb(self.tokens, self.offsets[:-1]) if self.n_tokens else None
        if self.id_emb is None:
            return feats if feats is not None else torch.zeros(self.n_rows, self.dim)
        w = self.id_emb.weight
        if feats is None:
            return w
        if self.training and self.id_dropout > 0:
            keep = (torch.rand(w.shape[0], 1, device=w.device) >= self.id_dropout).to(w.dtype)
            w = w * keep
        return w + feats

    def token_rows(self, idx: torch.Tensor) -> torch.Tensor:
        """The token part of the rows ``idx`` only, ``[len(idx), dim]`` (zero without tokens):
        a step that touches a few thousand items need not bag the whole catalogue."""
        if not self.n_tokens:
            return torch.zeros(len(idx), self.dim)
        start = self.offsets[idx]
        lens = self.offsets[idx + 1] - start
        off = torch.zeros(len(idx) + 1, dtype=torch.long, device=idx.device)
        off[1:] = lens.cumsum(0)
        # positions of every bag's tokens in the flat token list, bag after bag
        flat = torch.repeat_interleave(start - off[:-1], lens) + torch.arange(int(off[-1]), device=idx.device)
        return self.tok_emb(self.tokens[flat], off[:-1])

    def grow(self, n_new: int, offsets: torch.Tensor | None = None, tokens: torch.Tensor | None = None) -> None:
        """Append ``n_new`` items with zero id rows (and their token bags: the full new CSR)."""
        self.n_rows += n_new
        if self.id_emb is not None:
            old = self.id_emb.weight.data
            emb = nn.Embedding(old.shape[0] + n_new, old.shape[1], padding_idx=0)
            with torch.no_grad():
                emb.weight.zero_()
                emb.weight[: old.shape[0]] = old
            self.id_emb = emb
        if self.n_tokens and offsets is not None:
            self.set_tokens(offsets, tokens)
        elif self.n_tokens:
            self.offsets = torch.cat([self.offsets, self.offsets[-1:].expand(n_new)])


class _Block(nn.Module):
    """Pre-LayerNorm transformer block (nanoGPT layout) with a key-padding-aware causal mask."""

    def __init__(self, dim: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.mlp(self.ln2(x)))


class SASRec(nn.Module):
    """SASRec (Kang & McAuley 2018): a causal transformer over the item history.

    Learned absolute positions are aligned to the *end* of the sequence, so a batch trimmed to
    its longest history gives exactly the scores of the untrimmed one. Input and output item
    embeddings are tied: fewer parameters and better ranking on sparse catalogues (as in the
    paper). ``encode`` returns one state per position; the score of the next item at position
    ``t`` is ``state[t] @ item_emb.T``.

    Example:
        >>> net = SASRec(n_items=10, dim=8, max_len=5)
        >>> net.encode(torch.tensor([[0, 1, 2]])).shape
        torch.Size([1, 3, 8])
    """

    def __init__(self, n_items: int, dim: int = 64, max_len: int = 50, n_layers: int = 2, n_heads: int = 1,
                 dropout: float = 0.2, n_tokens: int = 0, id_dropout: float = 0.0, repeat: bool = False):
        super().__init__()
        self.n_items, self.max_len = n_items, max_len
        self.item_emb = ItemTable(n_items, dim, n_tokens, id_dropout)
        # The repeat head: a logit for every item already in the history, from the state and
        # the item's count and recency there (losses.repeat_features), so "buy it again" is
        # learned apart from "similar to what you have" (tied embeddings otherwise rank history
        # items near the top, which is what protocol B punishes).
        self.repeat = nn.Linear(dim, 3) if repeat else None
        self.pos_emb = nn.Embedding(max_len, dim)
        self.emb_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, n_heads, dropout) for _ in range(n_layers))
        self.ln = nn.LayerNorm(dim)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        if self.repeat is not None:
            nn.init.zeros_(self.repeat.weight)
            nn.init.zeros_(self.repeat.bias)

    def encode(self, seq: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """States ``[B, L, dim]`` of a left-padded history ``[B, L]`` (L <= max_len);
        ``table`` is ``item_emb()`` when the caller already has it."""
        seq = seq[:, -self.max_len :]
        t = seq.shape[1]
        table = self.item_emb() if table is None else table
        pos = torch.arange(self.max_len - t, self.max_len, device=seq.device)
        x = table[seq] * math.sqrt(table.shape[1]) + self.pos_emb(pos)
        x = self.emb_drop(x)
        keep = seq != 0
        causal = torch.ones(t, t, dtype=torch.bool, device=seq.device).tril()
        # Attend to earlier non-padding items, and always to oneself so no row is empty.
        mask = (causal & keep[:, None, :]) | torch.eye(t, dtype=torch.bool, device=seq.device)
        mask = mask[:, None]
        for block in self.blocks:
            x = block(x, mask)
        return self.ln(x) * keep[..., None]

    def score(self, seq: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """Next-item scores ``[B, n_items + 1]`` after each history (column 0 = ``-inf``);
        with the repeat gate, the history's items (all of ``seq``, not only the last
        ``max_len``) get the gate's logit on top."""
        table = self.item_emb()
        h = self.encode(seq, table)[:, -1]
        s = h @ table.T
        if self.repeat is not None:
            idx, val = self.repeat_terms(seq, h)
            s[:, 1:].scatter_add_(1, idx.clamp(min=0), val.masked_fill(idx < 0, 0.0))
        s[:, 0] = float("-inf")
        return s

    def repeat_terms(self, window: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The repeat head's ``(items [T, L] 0-based or -1, logits [T, L])`` for right-aligned
        history windows ``[T, L]`` and their states ``h [T, dim]``."""
        from shopml.recommend.losses import repeat_features

        idx, feats = repeat_features(window[:, -self.max_len :])
        return idx, (self.repeat(h)[:, None, :] * feats).sum(2)


class Caser(nn.Module):
    """Caser (Tang & Wang 2018): convolutions over the embedding "image" of the last L items.

    Horizontal filters of heights 1..L capture union-level and skip patterns (max-pooled over
    time); vertical filters take weighted sums of the L embeddings (point-level patterns). The
    user embedding (row 0 = unknown user, kept at zero) carries the long-term taste.

    Example:
        >>> net = Caser(n_items=10, n_users=3, dim=8, L=4)
        >>> net.score(torch.tensor([[0, 1, 2, 3]]), torch.tensor([2])).shape
        torch.Size([1, 11])
    """

    def __init__(self, n_items: int, n_users: int, dim: int = 64, L: int = 10, n_h: int = 16, n_v: int = 4,
                 dropout: float = 0.5, n_tokens: int = 0, id_dropout: float = 0.0):
        super().__init__()
        self.n_items, self.L = n_items, L
        self.item_emb = ItemTable(n_items, dim, n_tokens, id_dropout, std=1.0 / dim)
        self.user_emb = nn.Embedding(n_users + 1, dim, padding_idx=0)
        self.conv_v = nn.Conv2d(1, n_v, (L, 1))
        self.conv_h = nn.ModuleList(nn.Conv2d(1, n_h, (h, dim)) for h in range(1, L + 1))
        self.fc = nn.Linear(n_v * dim + n_h * L, dim)
        self.drop = nn.Dropout(dropout)
        self.out_emb = ItemTable(n_items, 2 * dim, n_tokens, id_dropout, std=1.0 / (2 * dim))
        self.out_bias = nn.Embedding(n_items + 1, 1)
        nn.init.normal_(self.user_emb.weight, std=1.0 / dim)
        nn.init.zeros_(self.out_bias.weight)
        with torch.no_grad():
            self.user_emb.weight[0].zero_()

    def encode(self, seq: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, 2*dim]`` query vector from the last L items of ``seq`` and the users (0 = unknown)."""
        seq = seq[:, -self.L :]
        if seq.shape[1] < self.L:
            seq = F.pad(seq, (self.L - seq.shape[1], 0))
        e = self.item_emb()[seq].unsqueeze(1)  # [B, 1, L, d]
        v = self.conv_v(e).flatten(1)
        hs = [F.relu(conv(e).squeeze(3)).amax(2) for conv in self.conv_h]
        z = F.relu(self.fc(self.drop(torch.cat([v, *hs], 1))))
        if users is None:
            users = torch.zeros(seq.shape[0], dtype=torch.long, device=seq.device)
        return torch.cat([z, self.user_emb(users)], 1)

    def logits(self, q: torch.Tensor) -> torch.Tensor:
        return q @ self.out_emb().T + self.out_bias.weight.T

    def score(self, seq: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        s = self.logits(self.encode(seq, users))
        s[:, 0] = float("-inf")
        return s
