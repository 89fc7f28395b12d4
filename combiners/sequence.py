"""The per-token concatenation of `sequence_concat`, then a recurrent or convolutional sequence encoder."""
from __future__ import annotations

import marshmallow
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from combiners._sequence import REDUCTIONS, concat_per_token, reduce_states
from framework.config import fields as f
from framework.models.encoded import Encoded
from framework.registry import register_combiner


class _Recurrent(nn.Module):
    """An LSTM or GRU that reads each row's real tokens only (packed), so padding changes nothing."""

    def __init__(self, cell: type[nn.RNNBase], input_size: int, state_size: int, num_layers: int,
                 bidirectional: bool):
        super().__init__()
        self.rnn = cell(input_size, state_size, num_layers, batch_first=True, bidirectional=bidirectional)
        self.output_size = state_size * (2 if bidirectional else 1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # packing needs the lengths on the CPU: one CPU-GPU sync per batch. Masks are prefixes (padding
        # comes last), so the length of a row is its count of real tokens.
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(states, lengths, batch_first=True, enforce_sorted=False)
        output, _ = self.rnn(packed)
        output, _ = pad_packed_sequence(output, batch_first=True, total_length=states.shape[1])
        return output


class _Convolutional(nn.Module):
    """1-D convolutions over tokens ("same" padding, ReLU); padding tokens are zeroed before each
    layer, so a row's outputs at its real tokens do not depend on how much padding follows."""

    def __init__(self, input_size: int, state_size: int, num_layers: int, filter_size: int):
        super().__init__()
        sizes = [input_size] + [state_size] * num_layers
        self.layers = nn.ModuleList(nn.Conv1d(a, b, filter_size, padding="same") for a, b in zip(sizes, sizes[1:]))
        self.output_size = state_size

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        padding = ~mask.unsqueeze(-1)
        for conv in self.layers:
            states = torch.relu(conv(states.masked_fill(padding, 0.0).transpose(1, 2)).transpose(1, 2))
        return states


ENCODERS = {  # name -> builder from the input width and the combiner's settings
    "lstm": lambda size, s: _Recurrent(nn.LSTM, size, s["state_size"], s["num_layers"], s["bidirectional"]),
    "gru": lambda size, s: _Recurrent(nn.GRU, size, s["state_size"], s["num_layers"], s["bidirectional"]),
    "cnn": lambda size, s: _Convolutional(size, s["state_size"], s["num_layers"], s["filter_size"]),
}


class SequenceSchema(f.Schema):
    encoder = f.Choice(ENCODERS, "lstm", doc="the sequence encoder over the concatenated per-token states")
    state_size = f.Int(64, min=1, doc="width of the encoder's states (per direction for a bidirectional rnn)")
    num_layers = f.Int(1, min=1, doc="number of stacked rnn or convolution layers")
    bidirectional = f.Bool(False, doc="lstm and gru: also read each sequence backwards, doubling the width")
    filter_size = f.Int(3, min=1, doc="cnn: width of each convolution's window, in tokens")
    dropout = f.Float(0.0, min=0.0, max=1.0, max_inclusive=False, doc="dropout probability on the encoder's states")
    reduce_output = f.Choice(REDUCTIONS, "mean", doc="how the per-token states become one vector per row "
                                                     "(the states themselves are always handed on, for a tagger)")

    @marshmallow.validates_schema
    def _bidirectional_needs_an_rnn(self, data: dict, **kwargs) -> None:
        if data.get("bidirectional") and data.get("encoder") == "cnn":
            raise marshmallow.ValidationError("applies to the lstm and gru encoders only, not cnn", "bidirectional")


@register_combiner("sequence", schema=SequenceSchema)
class SequenceCombiner(nn.Module):
    """`sequence_concat`'s per-token concatenation, then an lstm, gru or cnn over its tokens.

    Returns `Encoded(pooled, states, mask)`: the encoder's per-token states (zero at padding) and their
    `reduce_output` over the real tokens. Needs at least one input with per-token states.
    """

    def __init__(self, input_sizes: dict[str, int], *, encoder: str = "lstm", state_size: int = 64,
                 num_layers: int = 1, bidirectional: bool = False, filter_size: int = 3, dropout: float = 0.0,
                 reduce_output: str = "mean"):
        super().__init__()
        self.names = list(input_sizes)
        self.reduce_output = reduce_output
        settings = {"state_size": state_size, "num_layers": num_layers, "bidirectional": bidirectional,
                    "filter_size": filter_size}
        self.encoder = ENCODERS[encoder](sum(input_sizes.values()), settings)
        self.dropout = nn.Dropout(dropout)
        self.output_size = self.encoder.output_size

    def forward(self, encoded: dict[str, Encoded]) -> Encoded:
        states, mask = concat_per_token(encoded, self.names, "the sequence combiner")
        states = self.dropout(self.encoder(states, mask)).masked_fill(~mask.unsqueeze(-1), 0.0)
        return Encoded(reduce_states(states, mask, self.reduce_output), states, mask)
