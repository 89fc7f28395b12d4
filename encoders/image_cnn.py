"""`stacked_cnn` for images: convolutions with normalisation, activation, max-pooling and dropout,
global average pooling to one vector per image, then an fc stack.

Pooling halves the image only while it is at least `pool_size` wide, so a small image (16x16) with
many layers keeps a 1x1 map instead of failing; the sizes are known at construction from the data.
"""
from __future__ import annotations

import torch
from torch import nn

from encoders._image_input import Augmentation, ImageInput
from framework.config import fields as f
from framework.models.fc_stack import ACTIVATIONS, FCStack, FCStackSchema
from framework.registry import register_encoder

CONV_NORMS = {None: None, "batch": nn.BatchNorm2d, "group": lambda channels: nn.GroupNorm(min(8, channels), channels)}


class ImageStackedCNNSchema(FCStackSchema):
    augmentation = Augmentation()
    num_conv_layers = f.Int(3, min=1, doc="number of stacked convolutions")
    num_filters = f.Int(32, min=1, doc="output channels of the first convolution")
    filter_growth = f.Float(2.0, min=1.0, doc="each convolution has this many times the channels of the one "
                                              "before (capped at max_filters)")
    max_filters = f.Int(256, min=1, doc="the most channels a convolution has")
    filter_size = f.Int(3, min=1, doc="height and width of each convolution's window, in pixels")
    pool_size = f.Int(2, min=1, allow_none=True, doc="max-pool windows (stride the same) after each convolution; "
                                                     "null: no pooling")
    conv_norm = f.Choice(list(CONV_NORMS), "batch", doc="normalisation after each convolution: batch, group or none")
    conv_dropout = f.Float(0.0, min=0.0, max=1.0, max_inclusive=False, doc="dropout after each convolution block")
    num_fc_layers = f.Int(1, min=0, doc="fully connected layers after the pooled convolutions")
    output_size = f.Int(128, min=1, doc="width of each fully connected layer")


def _conv_block(channels_in: int, channels_out: int, *, filter_size: int, norm: str | None, activation: str,
                pool: int | None, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(channels_in, channels_out, filter_size, padding=filter_size // 2,
                                         bias=CONV_NORMS[norm] is None)]
    if CONV_NORMS[norm] is not None:
        layers.append(CONV_NORMS[norm](channels_out))
    layers.append(ACTIVATIONS[activation]())
    if pool is not None:
        layers.append(nn.MaxPool2d(pool))
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


@register_encoder("stacked_cnn", schema=ImageStackedCNNSchema, types=("image",))
class ImageStackedCNNEncoder(nn.Module):
    """Convolution blocks over the scaled pixels, global average pooling, an fc stack: [B, output_size]."""

    def __init__(self, num_channels: int, height: int, width: int, pixel_mean: list[float], pixel_std: list[float],
                 *, num_fc_layers: int = 1, output_size: int = 128, activation: str = "relu", norm: str | None = None,
                 dropout: float = 0.0, residual: bool = False,
                 augmentation: list[dict] = [],  # noqa: B006 (read, never mutated; the schema's default)
                 num_conv_layers: int = 3, num_filters: int = 32, filter_growth: float = 2.0, max_filters: int = 256,
                 filter_size: int = 3, pool_size: int | None = 2, conv_norm: str | None = "batch",
                 conv_dropout: float = 0.0):
        super().__init__()
        self.input = ImageInput(num_channels, pixel_mean, pixel_std, augmentation)
        blocks, channels, size = [], num_channels, min(height, width)
        for layer in range(num_conv_layers):
            out = min(max_filters, round(num_filters * filter_growth ** layer))
            pool = pool_size if pool_size is not None and size >= pool_size else None
            blocks.append(_conv_block(channels, out, filter_size=filter_size, norm=conv_norm, activation=activation,
                                      pool=pool, dropout=conv_dropout))
            channels, size = out, size // pool if pool else size
        self.convolutions = nn.Sequential(*blocks)
        self.fc = FCStack(channels, num_fc_layers=num_fc_layers, output_size=output_size, activation=activation,
                          norm=norm, dropout=dropout, residual=residual)
        self.output_size = self.fc.output_size

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convolutions(self.input(pixels)).mean(dim=(-2, -1)))
