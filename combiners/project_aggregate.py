"""Projects every input feature to one width, aggregates them elementwise, then an fc stack."""
from __future__ import annotations

import torch
from torch import nn

from framework.config import fields as f
from framework.models.encoded import Encoded
from framework.models.fc_stack import FCStack, FCStackSchema
from framework.registry import register_combiner

# [B, n inputs, projection_size] -> [B, projection_size]
AGGREGATIONS = {
    "mean": lambda stacked: stacked.mean(dim=1),
    "sum": lambda stacked: stacked.sum(dim=1),
    "max": lambda stacked: stacked.amax(dim=1),
}


class ProjectAggregateSchema(FCStackSchema):
    num_fc_layers = f.Int(1, min=0, doc="number of fully connected layers after the aggregation")
    output_size = f.Int(128, min=1, doc="width of each fully connected layer")
    projection_size = f.Int(64, min=1, doc="width every input's vector is projected to (a linear layer per input)")
    aggregation = f.Choice(AGGREGATIONS, "mean", doc="how the projected vectors are combined, elementwise")


@register_combiner("project_aggregate", schema=ProjectAggregateSchema)
class ProjectAggregateCombiner(nn.Module):
    """Every input's vector projected linearly to `projection_size`, the projections aggregated
    elementwise (mean, sum or max), then an fc stack. Its width does not grow with the number of inputs."""

    def __init__(self, input_sizes: dict[str, int], *, num_fc_layers: int = 1, output_size: int = 128,
                 activation: str = "relu", norm: str | None = None, dropout: float = 0.0, residual: bool = False,
                 projection_size: int = 64, aggregation: str = "mean"):
        super().__init__()
        self.names = list(input_sizes)
        self.projections = nn.ModuleDict({name: nn.Linear(size, projection_size) for name, size in input_sizes.items()})
        self.aggregate = AGGREGATIONS[aggregation]
        self.stack = FCStack(projection_size, num_fc_layers=num_fc_layers, output_size=output_size,
                             activation=activation, norm=norm, dropout=dropout, residual=residual)
        self.output_size = self.stack.output_size

    def forward(self, encoded: dict[str, Encoded]) -> torch.Tensor:
        projected = torch.stack([self.projections[name](encoded[name].pooled) for name in self.names], dim=1)
        return self.stack(self.aggregate(projected))
