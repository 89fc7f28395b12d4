"""Metrics of set outputs, over [N, V] indicators of the predicted and the true labels.

`jaccard` is the mean over rows of |predicted ∩ true| / |predicted ∪ true| (1 for a row where both
are empty, as sklearn's jaccard_score(average="samples", zero_division=1)). `loss`, `precision`,
`recall` and `f1` are the binary type's (tabular.py): over [N, V] indicators they are micro-averaged,
counted over every (row, label) pair of the split at once.
"""
from __future__ import annotations

import torch

from framework.registry import register_metric


@register_metric("jaccard", types=("set",), goal="max")
def jaccard(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    predicted, actual = outputs["predictions"].bool(), target.bool()
    intersection = (predicted & actual).sum(dim=1).double()
    union = (predicted | actual).sum(dim=1).double()
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union)).mean()
