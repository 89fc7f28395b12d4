"""An fc stack then a linear projection: one value per row for number and binary outputs."""
import torch
from torch import nn

from framework.config import fields as f
from framework.models.fc_stack import FCStack, FCStackSchema
from framework.registry import register_decoder


class ProjectionSchema(FCStackSchema):
    num_fc_layers = f.Int(0, min=0, doc="fully connected layers before the output projection")
    output_size = f.Int(64, min=1, doc="width of each of those layers")


class Projection(nn.Module):
    """The shape shared by the regressor and the classifier; they differ in what the output means."""

    def __init__(self, input_size: int, num_outputs: int, *, num_fc_layers: int = 0, output_size: int = 64,
                 activation: str = "relu", norm: str | None = None, dropout: float = 0.0,
                 residual: bool = False):
        super().__init__()
        self.stack = FCStack(input_size, num_fc_layers=num_fc_layers, output_size=output_size,
                             activation=activation, norm=norm, dropout=dropout, residual=residual)
        self.projection = nn.Linear(self.stack.output_size, num_outputs)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.projection(self.stack(hidden))


@register_decoder("regressor", schema=ProjectionSchema, types=("number", "binary"))
class Regressor(Projection):
    """One raw value per row: the (normalised) number, or the logit of a binary output."""
