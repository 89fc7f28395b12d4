"""Each input feature becomes one token; transformer layers let the features attend to each other."""
from __future__ import annotations

import marshmallow
import torch
from torch import nn

from framework.config import fields as f
from framework.models.encoded import Encoded
from framework.models.fc_stack import FCStack, FCStackSchema
from framework.registry import register_combiner

# how the transformer's output tokens [B, n, hidden] become one vector per row
REDUCTIONS = {
    "mean": lambda tokens: tokens.mean(dim=1),
    "concat": lambda tokens: tokens.flatten(1),
    "cls": lambda tokens: tokens[:, 0],
}


class TransformerSchema(FCStackSchema):
    num_fc_layers = f.Int(1, min=0, doc="number of fully connected layers after the transformer")
    output_size = f.Int(128, min=1, doc="width of each fully connected layer")
    hidden_size = f.Int(64, min=1, doc="width of the tokens: every input's vector is projected to it")
    num_layers = f.Int(1, min=1, doc="number of transformer layers")
    num_heads = f.Int(4, min=1, doc="attention heads per layer; hidden_size must be a multiple of it")
    feed_forward_size = f.Int(128, min=1, doc="width of each transformer layer's feed-forward block")
    transformer_dropout = f.Float(0.1, min=0.0, max=1.0, max_inclusive=False,
                                  doc="dropout probability inside the transformer layers")
    reduce_output = f.Choice(REDUCTIONS, "mean", doc="how the tokens become one vector: their mean, their "
                                                     "concatenation, or a learned [CLS] token prepended to them")

    @marshmallow.validates_schema
    def _heads_divide_the_width(self, data: dict, **kwargs) -> None:
        if data["hidden_size"] % data["num_heads"]:
            raise marshmallow.ValidationError(f"must be a multiple of num_heads ({data['num_heads']})", "hidden_size")


@register_combiner("transformer", schema=TransformerSchema)
class TransformerCombiner(nn.Module):
    """Every input's vector projected to `hidden_size` is one token; transformer layers mix the tokens,
    `reduce_output` makes them one vector, an fc stack follows.

    With `reduce_output: cls` a learned token is prepended and its output is the row's vector.
    Sequence inputs take part through their pooled vector.
    """

    def __init__(self, input_sizes: dict[str, int], *, num_fc_layers: int = 1, output_size: int = 128,
                 activation: str = "relu", norm: str | None = None, dropout: float = 0.0, residual: bool = False,
                 hidden_size: int = 64, num_layers: int = 1, num_heads: int = 4, feed_forward_size: int = 128,
                 transformer_dropout: float = 0.1, reduce_output: str = "mean"):
        super().__init__()
        self.names = list(input_sizes)
        self.projections = nn.ModuleDict({name: nn.Linear(size, hidden_size) for name, size in input_sizes.items()})
        self.cls = nn.Parameter(torch.randn(1, 1, hidden_size) * 0.02) if reduce_output == "cls" else None
        layer = nn.TransformerEncoderLayer(hidden_size, num_heads, feed_forward_size, transformer_dropout,
                                           batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.reduce = REDUCTIONS[reduce_output]
        width = hidden_size * len(self.names) if reduce_output == "concat" else hidden_size
        self.stack = FCStack(width, num_fc_layers=num_fc_layers, output_size=output_size, activation=activation,
                             norm=norm, dropout=dropout, residual=residual)
        self.output_size = self.stack.output_size

    def forward(self, encoded: dict[str, Encoded]) -> torch.Tensor:
        tokens = torch.stack([self.projections[name](encoded[name].pooled) for name in self.names], dim=1)
        if self.cls is not None:
            tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return self.stack(self.reduce(self.transformer(tokens)))
