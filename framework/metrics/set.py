"""Metrics of set outputs, over [N, V] indicators of the predicted and the true labels.

`jaccard` is the mean over rows of |predicted ∩ true| / |predicted ∪ true| (1 for a row where both
are empty, as sklearn's jaccard_score(average="samples", zero_division=1)). `precision`, `recall`
and `f1` are micro-averaged: counted over every (row, label) pair of the split at once.
"""
from __future__ import annotations

import torch

from framework.metrics import tabular
from framework.registry import register_metric


@register_metric("loss", types=("set",), goal="min")
def loss(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return outputs["loss"]


@register_metric("jaccard", types=("set",), goal="max")
def jaccard(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    predicted, actual = outputs["predictions"].bool(), target.bool()
    intersection = (predicted & actual).sum(dim=1).double()
    union = (predicted | actual).sum(dim=1).double()
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union)).mean()


@register_metric("precision", types=("set",), goal="max")
def precision(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """Correct labels over predicted labels, pooled over every row (0 when nothing is predicted)."""
    return tabular.precision(outputs, target, settings)


@register_metric("recall", types=("set",), goal="max")
def recall(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """Correct labels over true labels, pooled over every row."""
    return tabular.recall(outputs, target, settings)


@register_metric("f1", types=("set",), goal="max")
def f1(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """The harmonic mean of the micro precision and recall."""
    return tabular.f1(outputs, target, settings)
