"""The sequence encoders over audio frames: `embed`, `parallel_cnn`, `stacked_cnn`, `rnn`, `transformer`.

Audio frames are time steps of several values each (filter-bank energies, cepstra), where a time series
has one, so these share the bodies and settings of the timeseries encoders and differ only in the input
layer: each frame [D] is projected to `embedding_size` (StepProjection with `input_size` D). Kept in
one file so the sequence encoder modules stay untouched by a data type they do not otherwise know.
"""
from __future__ import annotations

from encoders._sequence_input import SequenceEncoder, StepProjection
from encoders.sequence_cnn import (TimeseriesParallelCNNSchema, TimeseriesStackedCNNSchema, _ParallelCNN,
                                   _StackedCNN)
from encoders.sequence_embed import TimeseriesEmbedSchema, _Embed
from encoders.sequence_rnn import TimeseriesRNNSchema, _RNN
from encoders.sequence_transformer import TimeseriesTransformerSchema, _Transformer
from framework.registry import register_encoder

AUDIO_TYPES = ("audio",)


@register_encoder("embed", schema=TimeseriesEmbedSchema, types=AUDIO_TYPES)
class AudioEmbedEncoder(SequenceEncoder):
    """Each frame projected to a vector, reduced over the real frames."""

    def __init__(self, input_size: int, *, embedding_size: int = 64, dropout: float = 0.0,
                 output_size: int | None = None, reduce_output: str = "mean"):
        super().__init__(StepProjection(input_size, embedding_size=embedding_size, dropout=dropout),
                         _Embed(embedding_size, output_size=output_size, reduce_output=reduce_output))


@register_encoder("parallel_cnn", schema=TimeseriesParallelCNNSchema, types=AUDIO_TYPES)
class AudioParallelCNNEncoder(SequenceEncoder):
    """Convolutions of several widths side by side over the projected frames, then an fc stack per frame."""

    def __init__(self, input_size: int, *, embedding_size: int = 64, dropout: float = 0.0, num_fc_layers: int = 1,
                 output_size: int = 64, activation: str = "relu", norm: str | None = None, residual: bool = False,
                 num_filters: int = 32, reduce_output: str = "max",
                 filter_sizes: list[int] = [2, 3, 4, 5]):  # noqa: B006 (read, never mutated; the schema's default)
        super().__init__(
            StepProjection(input_size, embedding_size=embedding_size, dropout=dropout),
            _ParallelCNN(embedding_size, filter_sizes=filter_sizes, num_filters=num_filters, activation=activation,
                         dropout=dropout, num_fc_layers=num_fc_layers, output_size=output_size, norm=norm,
                         residual=residual, reduce_output=reduce_output))


@register_encoder("stacked_cnn", schema=TimeseriesStackedCNNSchema, types=AUDIO_TYPES)
class AudioStackedCNNEncoder(SequenceEncoder):
    """Convolutions stacked over the projected frames, optionally max-pooling after each."""

    def __init__(self, input_size: int, *, embedding_size: int = 64, dropout: float = 0.0, num_fc_layers: int = 0,
                 output_size: int = 64, activation: str = "relu", norm: str | None = None, residual: bool = False,
                 num_filters: int = 32, reduce_output: str = "max", num_conv_layers: int = 2, filter_size: int = 3,
                 pool_size: int | None = None):
        super().__init__(
            StepProjection(input_size, embedding_size=embedding_size, dropout=dropout),
            _StackedCNN(embedding_size, num_conv_layers=num_conv_layers, filter_size=filter_size,
                        num_filters=num_filters, pool_size=pool_size, activation=activation, dropout=dropout,
                        num_fc_layers=num_fc_layers, output_size=output_size, norm=norm, residual=residual,
                        reduce_output=reduce_output))


@register_encoder("rnn", schema=TimeseriesRNNSchema, types=AUDIO_TYPES)
class AudioRNNEncoder(SequenceEncoder):
    """A recurrent network (LSTM, GRU or plain RNN) over the projected frames."""

    def __init__(self, input_size: int, *, embedding_size: int = 64, dropout: float = 0.0, cell_type: str = "lstm",
                 num_layers: int = 1, state_size: int = 64, bidirectional: bool = False, reduce_output: str = "last"):
        super().__init__(
            StepProjection(input_size, embedding_size=embedding_size, dropout=dropout),
            _RNN(embedding_size, cell_type=cell_type, num_layers=num_layers, state_size=state_size,
                 bidirectional=bidirectional, dropout=dropout, reduce_output=reduce_output))


@register_encoder("transformer", schema=TimeseriesTransformerSchema, types=AUDIO_TYPES)
class AudioTransformerEncoder(SequenceEncoder):
    """Transformer layers (self-attention over the real frames) on the projected frames plus positions."""

    def __init__(self, input_size: int, *, embedding_size: int = 64, dropout: float = 0.0, num_layers: int = 1,
                 num_heads: int = 4, hidden_size: int = 64, feedforward_size: int = 128,
                 positional_encoding: str = "sinusoidal", max_sequence_length: int = 512, reduce_output: str = "mean"):
        super().__init__(
            StepProjection(input_size, embedding_size=embedding_size, dropout=dropout),
            _Transformer(embedding_size, num_layers=num_layers, num_heads=num_heads, hidden_size=hidden_size,
                         feedforward_size=feedforward_size, dropout=dropout, positional_encoding=positional_encoding,
                         max_sequence_length=max_sequence_length, reduce_output=reduce_output))
