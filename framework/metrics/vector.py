"""Metrics of vector outputs, over [N, D] predictions and targets in the units of the data.

`loss`, `mse`, `mae`, `rmse` (over every value) and `r2` (the mean of each dimension's) are the
number type's, registered for vectors in tabular.py; `cosine_similarity` is the mean over rows.
"""
from __future__ import annotations

import torch

from framework.registry import register_metric


@register_metric("cosine_similarity", types=("vector",), goal="max")
def cosine_similarity(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(outputs["predictions"].double(), target.double(), dim=-1).mean()
