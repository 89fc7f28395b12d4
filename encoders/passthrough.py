"""The value itself, as a width-1 vector: the right default for already-normalised numbers."""
import torch
from torch import nn

from framework.config import fields as f
from framework.registry import register_encoder


class PassthroughSchema(f.Schema):
    pass


@register_encoder("passthrough", schema=PassthroughSchema, types=("number", "binary"))
class PassthroughEncoder(nn.Module):
    def __init__(self, input_size: int):
        super().__init__()
        self.output_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(-1) if x.dim() == 1 else x
