"""Losses of vector outputs: the mean over every value of every row of the [B, D] predictions."""
from __future__ import annotations

import torch
from torch import nn

from framework.losses.tabular import HuberSchema, NoSettings
from framework.registry import register_loss


@register_loss("mse", schema=NoSettings, types=("vector",))
class VectorMSELoss(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(logits.float(), target.float())


@register_loss("mae", schema=NoSettings, types=("vector",))
class VectorMAELoss(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.l1_loss(logits.float(), target.float())


@register_loss("huber", schema=HuberSchema, types=("vector",))
class VectorHuberLoss(nn.Module):
    def __init__(self, *, delta: float = 1.0):
        super().__init__()
        self.delta = delta

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.huber_loss(logits.float(), target.float(), delta=self.delta)
