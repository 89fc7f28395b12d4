"""Metrics per output type: pure functions of a whole split's predictions and targets.

Evaluation concatenates predictions on the device and calls these once per split, so no metric
syncs with the host per step, and every value is exact (not an average of batch averages).
`goal` says which direction is better, for early stopping and best checkpoints.
"""
from __future__ import annotations

import torch

from framework.registry import register_metric


@register_metric("loss", types=("number", "binary", "category", "set", "vector"), goal="min")
def loss(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return outputs["loss"]


@register_metric("mse", types=("number", "vector"), goal="min")
def mse(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return torch.mean((outputs["predictions"].double() - target.double()) ** 2)


@register_metric("mae", types=("number", "vector"), goal="min")
def mae(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return torch.mean(torch.abs(outputs["predictions"].double() - target.double()))


@register_metric("rmse", types=("number", "vector"), goal="min")
def rmse(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return torch.sqrt(mse(outputs, target, settings))


@register_metric("r2", types=("number", "vector"), goal="max")
def r2(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """The mean of each dimension's R² (sklearn's r2_score, multioutput="uniform_average"); a constant
    target scores 1 when predicted exactly, else 0 (sklearn's force_finite)."""
    target, predicted = target.double(), outputs["predictions"].double()
    if target.dim() == 1:
        target, predicted = target.unsqueeze(1), predicted.unsqueeze(1)
    residual = torch.sum((target - predicted) ** 2, dim=0)
    total = torch.sum((target - target.mean(dim=0)) ** 2, dim=0)
    constant = (residual == 0).double()
    return torch.where(total > 0, 1.0 - residual / total.clamp_min(torch.finfo(torch.float64).tiny), constant).mean()


@register_metric("accuracy", types=("binary", "category"), goal="max")
def accuracy(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return (outputs["predictions"].long() == target.long()).double().mean()


def _binary_counts(outputs: dict, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    predicted = outputs["predictions"].bool()
    actual = target.bool()
    true_positive = (predicted & actual).sum().double()
    return true_positive, predicted.sum().double(), actual.sum().double()


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1), torch.zeros_like(numerator))


@register_metric("precision", types=("binary", "set"), goal="max")
def precision(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    true_positive, predicted, _ = _binary_counts(outputs, target)
    return _ratio(true_positive, predicted)


@register_metric("recall", types=("binary", "set"), goal="max")
def recall(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    true_positive, _, actual = _binary_counts(outputs, target)
    return _ratio(true_positive, actual)


@register_metric("f1", types=("binary", "set"), goal="max")
def f1(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    true_positive, predicted, actual = _binary_counts(outputs, target)
    return _ratio(2 * true_positive, predicted + actual)


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks with ties sharing their mean rank (what the Mann-Whitney statistic needs)."""
    uniques, inverse, counts = torch.unique(values, sorted=True, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    mean_rank = ends - (counts.double() - 1) / 2
    return mean_rank[inverse]


@register_metric("roc_auc", types=("binary",), goal="max")
def roc_auc(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    actual = target.bool()
    positives = actual.sum().double()
    negatives = (~actual).sum().double()
    if positives == 0 or negatives == 0:  # undefined with one class; 0.5 is "no skill"
        return torch.tensor(0.5, dtype=torch.float64, device=target.device)
    ranks = average_ranks(outputs["probabilities"].double())
    return (ranks[actual].sum() - positives * (positives + 1) / 2) / (positives * negatives)


@register_metric("top_k_accuracy", types=("category",), goal="max")
def top_k_accuracy(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    probabilities = outputs["probabilities"]
    k = min(settings["top_k"], probabilities.shape[-1])
    top = probabilities.topk(k, dim=-1).indices
    return (top == target.long().unsqueeze(-1)).any(dim=-1).double().mean()


@register_metric("macro_f1", types=("category",), goal="max")
def macro_f1(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """Mean F1 over the labels that occur in the targets or the predictions."""
    classes = outputs["probabilities"].shape[-1]
    predicted, actual = outputs["predictions"].long(), target.long()
    confusion = torch.bincount(actual * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    true_positive = confusion.diagonal().double()
    support = confusion.sum(dim=1).double() + confusion.sum(dim=0).double()
    present = support > 0
    return (2 * true_positive[present] / support[present]).mean()
