"""Concatenates every input feature's encoding, then an fc stack mixes them."""
import torch
from torch import nn

from framework.config import fields as f
from framework.models.encoded import Encoded
from framework.models.fc_stack import FCStack, FCStackSchema
from framework.registry import register_combiner


class ConcatSchema(FCStackSchema):
    num_fc_layers = f.Int(1, min=0, doc="number of fully connected layers after the concatenation")
    output_size = f.Int(128, min=1, doc="width of each layer")


@register_combiner("concat", schema=ConcatSchema)
class ConcatCombiner(nn.Module):
    def __init__(self, input_sizes: dict[str, int], *, num_fc_layers: int = 1, output_size: int = 128,
                 activation: str = "relu", norm: str | None = None, dropout: float = 0.0,
                 residual: bool = False):
        super().__init__()
        self.names = list(input_sizes)
        self.stack = FCStack(sum(input_sizes.values()), num_fc_layers=num_fc_layers, output_size=output_size,
                             activation=activation, norm=norm, dropout=dropout, residual=residual)
        self.output_size = self.stack.output_size

    def forward(self, encoded: dict[str, Encoded]) -> torch.Tensor:
        return self.stack(torch.cat([encoded[name].pooled for name in self.names], dim=-1))
