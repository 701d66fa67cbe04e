"""The value curve scores each slate as ``recommend`` shows it."""

from __future__ import annotations

import torch

from shopml.recommend.window_value import _shown


def test_shown_scores_rank_the_value_slate_likeliest_first_without_the_history():
    # items 1..5 (0 is padding); keys pick {4, 5, 2} once item 3 (history) is out
    keys = torch.tensor([[float("-inf"), 0.1, 2.0, 9.0, 5.0, 3.0]])
    p = torch.tensor([[0.0, 0.4, 0.1, 0.3, 0.05, 0.15]])
    out = _shown(keys, p, torch.tensor([[3]]), k=3)
    assert out.topk(3, dim=1).indices.tolist() == [[5, 2, 4]]  # P .15, .1, .05
    assert out[0, 3] == float("-inf") and out[0, 1] == 0.1  # history out, the rest unchanged


def test_shown_never_lifts_an_item_with_no_key():
    keys = torch.tensor([[float("-inf"), 1.0, float("-inf"), 2.0]])
    p = torch.tensor([[0.0, 0.5, 0.2, 0.3]])
    out = _shown(keys, p, torch.tensor([[0]]), k=3)
    assert torch.isinf(out[0, 2]) and out[0, 1] > out[0, 3] > 2.0  # P .5 shown before P .3
