"""Vector outputs: an fc stack, a linear projection to the vector's width, an optional activation."""
import torch
from torch import nn

from decoders.regressor import Projection, ProjectionSchema
from framework.config import fields as f
from framework.models.fc_stack import ACTIVATIONS
from framework.registry import register_decoder


class ProjectorSchema(ProjectionSchema):
    output_activation = f.Choice(ACTIVATIONS, "none",
                                 doc="applied to the projection, e.g. sigmoid for values in (0, 1) (use "
                                     "with normalization: null, as it bounds the normalised values)")


@register_decoder("projector", schema=ProjectorSchema, types=("vector",))
class Projector(nn.Module):
    def __init__(self, input_size: int, num_outputs: int, *, num_fc_layers: int = 0, output_size: int = 64,
                 activation: str = "relu", norm: str | None = None, dropout: float = 0.0,
                 residual: bool = False, output_activation: str = "none"):
        super().__init__()
        self.projection = Projection(input_size, num_outputs, num_fc_layers=num_fc_layers, output_size=output_size,
                                     activation=activation, norm=norm, dropout=dropout, residual=residual)
        self.output_activation = ACTIVATIONS[output_activation]()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output_activation(self.projection(hidden))
