"""Convolutional sequence encoders: `parallel_cnn` (several filter widths side by side, as in Kim 2014)
and `stacked_cnn` (convolutions on top of each other, optionally pooling between them).

Padding positions are zeroed before every convolution (each keeps the length, as "same" padding), so a
row's outputs at its real tokens do not depend on how much padding follows it in the batch. An fc
stack then runs on each real token, and the states are reduced to one vector per row.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from encoders._sequence_input import (TIMESERIES_TYPES, TOKEN_TYPES, Dropout, IntList, SequenceEncoder,
                                      StepInputSchema, StepProjection, TokenEmbedding, TokenInputSchema)
from encoders._sequence_pooling import encoded, has_batch_norm, per_token, zero_padding
from framework.config import fields as f
from framework.models.encoded import Encoded
from framework.models.fc_stack import ACTIVATIONS, FCStack, FCStackSchema
from framework.registry import register_encoder


class ConvSchema(FCStackSchema):
    """What both convolutional encoders share: their filters, and the fc stack run on each token."""

    dropout = Dropout()
    output_size = f.Int(64, min=1, doc="width of each fully connected layer (with none, the output is the "
                                       "convolutions' width)")
    activation = f.Choice(ACTIVATIONS, "relu", doc="activation after each convolution and each fc layer")
    num_filters = f.Int(32, min=1, doc="number of filters (output channels) of each convolution")
    reduce_output = f.Choice(["max", "mean", "sum", "last"], "max",
                             doc="how the per-token states become one per row (max: max-over-time pooling)")


class _ConvolutionsThenFC(nn.Module):
    """The part both bodies share: an activation and dropout after each convolution, the per-token fc
    stack and the reduction."""

    def __init__(self, width: int, *, activation: str, dropout: float, num_fc_layers: int, output_size: int,
                 norm: str | None, residual: bool, reduce_output: str):
        super().__init__()
        self.activation = ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)
        self.fc = FCStack(width, num_fc_layers=num_fc_layers, output_size=output_size, activation=activation,
                          norm=norm, dropout=dropout, residual=residual)
        self.reduce_output = reduce_output
        self.output_size = self.fc.output_size
        self.fc_batch_norm = has_batch_norm(self.fc)

    def convolve(self, conv: nn.Module, channels_first: torch.Tensor) -> torch.Tensor:
        """[B, C, T] already zero at padding -> [B, T, filters]."""
        return self.dropout(self.activation(conv(channels_first).transpose(1, 2)))

    def finish(self, states: torch.Tensor, mask: torch.Tensor) -> Encoded:
        return encoded(per_token(self.fc, states, mask, self.output_size, self.fc_batch_norm), mask,
                       self.reduce_output)


def _same_length_conv(in_channels: int, out_channels: int, size: int) -> nn.Sequential:
    """A convolution whose output is as long as its input, zero-padded explicitly on both sides (the
    extra one on the right for an even width): torch's padding="same" makes the same copy for an even
    width, with a warning each call."""
    left = (size - 1) // 2
    return nn.Sequential(nn.ConstantPad1d((left, size - 1 - left), 0.0), nn.Conv1d(in_channels, out_channels, size))


def _max_pool(states: torch.Tensor, mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of `size` tokens, stride `size`: each the max of its real tokens; a window is real when it
    holds one. The last window may be partial (ceil mode), so T' = ceil(T / size) whatever the padding."""
    states = states.masked_fill(~mask.unsqueeze(-1), torch.finfo(states.dtype).min)
    states = F.max_pool1d(states.transpose(1, 2), size, ceil_mode=True).transpose(1, 2)
    mask = F.max_pool1d(mask.unsqueeze(1).to(states.dtype), size, ceil_mode=True).squeeze(1) > 0
    return states, mask


class ParallelCNNBodySchema(ConvSchema):
    filter_sizes = IntList([2, 3, 4, 5], doc="the width of each parallel convolution, in tokens; their outputs "
                                             "are concatenated")
    num_fc_layers = f.Int(1, min=0, doc="number of fully connected layers on each token's concatenated filters")


class _ParallelCNN(_ConvolutionsThenFC):
    def __init__(self, input_size: int, *, filter_sizes: list[int], num_filters: int, activation: str,
                 dropout: float, num_fc_layers: int, output_size: int, norm: str | None, residual: bool,
                 reduce_output: str):
        super().__init__(num_filters * len(filter_sizes), activation=activation, dropout=dropout,
                         num_fc_layers=num_fc_layers, output_size=output_size, norm=norm, residual=residual,
                         reduce_output=reduce_output)
        self.convolutions = nn.ModuleList(_same_length_conv(input_size, num_filters, size)
                                          for size in filter_sizes)

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> Encoded:
        channels_first = zero_padding(vectors, mask).transpose(1, 2)  # zeroed once: every width reads the same input
        return self.finish(torch.cat([self.convolve(conv, channels_first) for conv in self.convolutions], -1), mask)


class ParallelCNNSchema(ParallelCNNBodySchema, TokenInputSchema):
    pass


@register_encoder("parallel_cnn", schema=ParallelCNNSchema, types=TOKEN_TYPES)
class ParallelCNNEncoder(SequenceEncoder):
    """Convolutions of several widths side by side over the token embeddings, then an fc stack per token."""

    def __init__(self, vocab_size: int, pad_id: int, vocab: list[str], *, embedding_size: int = 64,
                 dropout: float = 0.0, embeddings_trainable: bool = True, pretrained_embeddings: str | None = None,
                 num_fc_layers: int = 1, output_size: int = 64, activation: str = "relu", norm: str | None = None,
                 residual: bool = False, num_filters: int = 32, reduce_output: str = "max",
                 filter_sizes: list[int] = [2, 3, 4, 5]):  # noqa: B006 (read, never mutated; the schema's default)
        super().__init__(
            TokenEmbedding(vocab_size, pad_id, vocab, embedding_size=embedding_size, dropout=dropout,
                           embeddings_trainable=embeddings_trainable, pretrained_embeddings=pretrained_embeddings),
            _ParallelCNN(embedding_size, filter_sizes=filter_sizes, num_filters=num_filters, activation=activation,
                         dropout=dropout, num_fc_layers=num_fc_layers, output_size=output_size, norm=norm,
                         residual=residual, reduce_output=reduce_output))


class TimeseriesParallelCNNSchema(ParallelCNNBodySchema, StepInputSchema):
    pass


@register_encoder("parallel_cnn", schema=TimeseriesParallelCNNSchema, types=TIMESERIES_TYPES)
class TimeseriesParallelCNNEncoder(SequenceEncoder):
    """Convolutions of several widths side by side over the projected steps, then an fc stack per step."""

    def __init__(self, *, embedding_size: int = 64, dropout: float = 0.0, num_fc_layers: int = 1,
                 output_size: int = 64, activation: str = "relu", norm: str | None = None, residual: bool = False,
                 num_filters: int = 32, reduce_output: str = "max",
                 filter_sizes: list[int] = [2, 3, 4, 5]):  # noqa: B006 (read, never mutated; the schema's default)
        super().__init__(
            StepProjection(embedding_size=embedding_size, dropout=dropout),
            _ParallelCNN(embedding_size, filter_sizes=filter_sizes, num_filters=num_filters, activation=activation,
                         dropout=dropout, num_fc_layers=num_fc_layers, output_size=output_size, norm=norm,
                         residual=residual, reduce_output=reduce_output))


class StackedCNNBodySchema(ConvSchema):
    num_conv_layers = f.Int(2, min=1, doc="number of stacked convolutions")
    filter_size = f.Int(3, min=1, doc="width of each convolution's window, in tokens")
    pool_size = f.Int(None, min=1, doc="max-pool windows of this many tokens (stride the same) after each "
                                       "convolution, shortening the states; null: no pooling")
    num_fc_layers = f.Int(0, min=0, doc="number of fully connected layers on each token's last convolution")


class _StackedCNN(_ConvolutionsThenFC):
    def __init__(self, input_size: int, *, num_conv_layers: int, filter_size: int, num_filters: int,
                 pool_size: int | None, activation: str, dropout: float, num_fc_layers: int, output_size: int,
                 norm: str | None, residual: bool, reduce_output: str):
        super().__init__(num_filters, activation=activation, dropout=dropout, num_fc_layers=num_fc_layers,
                         output_size=output_size, norm=norm, residual=residual, reduce_output=reduce_output)
        sizes = [input_size] + [num_filters] * num_conv_layers
        self.convolutions = nn.ModuleList(_same_length_conv(a, b, filter_size)
                                          for a, b in zip(sizes, sizes[1:]))
        self.pool_size = pool_size

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> Encoded:
        for conv in self.convolutions:
            states = self.convolve(conv, zero_padding(states, mask).transpose(1, 2))
            if self.pool_size is not None:
                states, mask = _max_pool(states, mask, self.pool_size)
        return self.finish(states, mask)


class StackedCNNSchema(StackedCNNBodySchema, TokenInputSchema):
    pass


@register_encoder("stacked_cnn", schema=StackedCNNSchema, types=TOKEN_TYPES)
class StackedCNNEncoder(SequenceEncoder):
    """Convolutions stacked over the token embeddings, optionally max-pooling after each."""

    def __init__(self, vocab_size: int, pad_id: int, vocab: list[str], *, embedding_size: int = 64,
                 dropout: float = 0.0, embeddings_trainable: bool = True, pretrained_embeddings: str | None = None,
                 num_fc_layers: int = 0, output_size: int = 64, activation: str = "relu", norm: str | None = None,
                 residual: bool = False, num_filters: int = 32, reduce_output: str = "max", num_conv_layers: int = 2,
                 filter_size: int = 3, pool_size: int | None = None):
        super().__init__(
            TokenEmbedding(vocab_size, pad_id, vocab, embedding_size=embedding_size, dropout=dropout,
                           embeddings_trainable=embeddings_trainable, pretrained_embeddings=pretrained_embeddings),
            _StackedCNN(embedding_size, num_conv_layers=num_conv_layers, filter_size=filter_size,
                        num_filters=num_filters, pool_size=pool_size, activation=activation, dropout=dropout,
                        num_fc_layers=num_fc_layers, output_size=output_size, norm=norm, residual=residual,
                        reduce_output=reduce_output))


class TimeseriesStackedCNNSchema(StackedCNNBodySchema, StepInputSchema):
    pass


@register_encoder("stacked_cnn", schema=TimeseriesStackedCNNSchema, types=TIMESERIES_TYPES)
class TimeseriesStackedCNNEncoder(SequenceEncoder):
    """Convolutions stacked over the projected steps, optionally max-pooling after each."""

    def __init__(self, *, embedding_size: int = 64, dropout: float = 0.0, num_fc_layers: int = 0,
                 output_size: int = 64, activation: str = "relu", norm: str | None = None, residual: bool = False,
                 num_filters: int = 32, reduce_output: str = "max", num_conv_layers: int = 2, filter_size: int = 3,
                 pool_size: int | None = None):
        super().__init__(
            StepProjection(embedding_size=embedding_size, dropout=dropout),
            _StackedCNN(embedding_size, num_conv_layers=num_conv_layers, filter_size=filter_size,
                        num_filters=num_filters, pool_size=pool_size, activation=activation, dropout=dropout,
                        num_fc_layers=num_fc_layers, output_size=output_size, norm=norm, residual=residual,
                        reduce_output=reduce_output))
