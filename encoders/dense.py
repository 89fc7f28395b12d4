"""A small fc stack over a scalar: lets the model learn a non-linear response per number."""
import torch
from torch import nn

from framework.config import fields as f
from framework.models.fc_stack import FCStack, FCStackSchema
from framework.registry import register_encoder


class DenseSchema(FCStackSchema):
    num_fc_layers = f.Int(1, min=1, doc="number of fully connected layers")
    output_size = f.Int(32, min=1, doc="width of each layer")


@register_encoder("dense", schema=DenseSchema, types=("number", "binary"))
class DenseEncoder(nn.Module):
    def __init__(self, input_size: int, *, num_fc_layers: int = 1, output_size: int = 32,
                 activation: str = "relu", norm: str | None = None, dropout: float = 0.0,
                 residual: bool = False):
        super().__init__()
        self.stack = FCStack(input_size, num_fc_layers=num_fc_layers, output_size=output_size,
                             activation=activation, norm=norm, dropout=dropout, residual=residual)
        self.output_size = self.stack.output_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack(x.unsqueeze(-1) if x.dim() == 1 else x)
