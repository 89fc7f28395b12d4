"""Metrics of vector outputs, over [N, D] predictions and targets in the units of the data.

`mse`, `mae` and `rmse` average over every value; `r2` is the mean of each dimension's R² (as
sklearn's r2_score with multioutput="uniform_average"); `cosine_similarity` is the mean over rows.
"""
from __future__ import annotations

import torch

from framework.metrics import tabular
from framework.registry import register_metric


@register_metric("loss", types=("vector",), goal="min")
def loss(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return outputs["loss"]


@register_metric("mse", types=("vector",), goal="min")
def mse(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return tabular.mse(outputs, target, settings)


@register_metric("mae", types=("vector",), goal="min")
def mae(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return tabular.mae(outputs, target, settings)


@register_metric("rmse", types=("vector",), goal="min")
def rmse(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return tabular.rmse(outputs, target, settings)


@register_metric("r2", types=("vector",), goal="max")
def r2(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """A constant dimension scores 1 when predicted exactly, else 0 (sklearn's force_finite)."""
    target, predicted = target.double(), outputs["predictions"].double()
    residual = torch.sum((target - predicted) ** 2, dim=0)
    total = torch.sum((target - target.mean(dim=0)) ** 2, dim=0)
    constant = (residual == 0).double()
    return torch.where(total > 0, 1.0 - residual / total.clamp_min(torch.finfo(torch.float64).tiny), constant).mean()


@register_metric("cosine_similarity", types=("vector",), goal="max")
def cosine_similarity(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(outputs["predictions"].double(), target.double(), dim=-1).mean()
