"""A stack of fully connected layers, shared by combiners and decoders."""
from __future__ import annotations

import torch
from torch import nn

from framework.config import fields as f

ACTIVATIONS = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "none": nn.Identity,
}
NORMS = {None: None, "batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


class FCStackSchema(f.Schema):
    """Settings of an fc stack; combiner and decoder schemas inherit them."""

    num_fc_layers = f.Int(0, min=0, doc="number of fully connected layers")
    output_size = f.Int(256, min=1, doc="width of each fully connected layer")
    activation = f.Choice(ACTIVATIONS, "relu", doc="activation after each layer")
    norm = f.Choice(NORMS, None, doc="normalisation after each layer: batch, layer or none")
    dropout = f.Float(0.0, min=0.0, max=1.0, max_inclusive=False, doc="dropout probability after each layer")
    residual = f.Bool(False, doc="add each layer's input to its output where the widths match")


class FCStack(nn.Module):
    def __init__(self, input_size: int, *, num_fc_layers: int = 0, output_size: int = 256,
                 activation: str = "relu", norm: str | None = None, dropout: float = 0.0,
                 residual: bool = False):
        super().__init__()
        self.residual = residual
        self.layers = nn.ModuleList()
        size = input_size
        for _ in range(num_fc_layers):
            block = [nn.Linear(size, output_size)]
            if NORMS[norm] is not None:
                block.append(NORMS[norm](output_size))
            block.append(ACTIVATIONS[activation]())
            if dropout > 0:
                block.append(nn.Dropout(dropout))
            self.layers.append(nn.Sequential(*block))
            size = output_size
        self.output_size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            y = layer(x)
            x = x + y if self.residual and y.shape == x.shape else y
        return x


def fc_settings(settings: dict) -> dict:
    """The fc-stack part of a component's settings."""
    return {name: settings[name] for name in FCStackSchema().fields}
