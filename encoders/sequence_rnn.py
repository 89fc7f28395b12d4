"""`rnn`: an LSTM, GRU or plain RNN over the real tokens only (packed), so padding never changes a result."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from encoders._sequence_input import (TIMESERIES_TYPES, TOKEN_TYPES, SequenceEncoder, StepInputSchema,
                                      StepProjection, TokenEmbedding, TokenInputSchema)
from encoders._sequence_pooling import reduce_states, zero_padding
from framework.config import fields as f
from framework.models.encoded import Encoded
from framework.registry import register_encoder

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class RNNBodySchema(f.Schema):
    cell_type = f.Choice(CELLS, "lstm", doc="the recurrent cell")
    num_layers = f.Int(1, min=1, doc="number of stacked recurrent layers (dropout applies between them)")
    state_size = f.Int(64, min=1, doc="width of the hidden state, per direction")
    bidirectional = f.Bool(False, doc="also read each row backwards; the output width doubles")
    reduce_output = f.Choice(["last", "mean", "sum", "max"], "last",
                             doc="how the per-token states become one per row (last: the final state of each "
                                 "direction, after the last real token forwards and the first backwards)")


class _RNN(nn.Module):
    def __init__(self, input_size: int, *, cell_type: str, num_layers: int, state_size: int, bidirectional: bool,
                 dropout: float, reduce_output: str):
        super().__init__()
        # the cell's dropout acts between layers only; torch warns when it is set with one layer
        self.rnn = CELLS[cell_type](input_size, state_size, num_layers, batch_first=True,
                                    bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.directions = 2 if bidirectional else 1
        self.reduce_output = reduce_output
        self.output_size = state_size * self.directions

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> Encoded:
        # padding comes last, so a row's length is its count of real tokens. A row of padding only is
        # read as one step (packing refuses length 0) and zeroed below. Packing needs the lengths on the
        # CPU: one CPU-GPU sync per batch.
        lengths = mask.sum(dim=1)
        packed = pack_padded_sequence(vectors, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        states, final = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=vectors.shape[1])
        states = zero_padding(states, mask)
        if self.reduce_output == "last":
            pooled = self._final_states(final, lengths > 0)
        else:
            pooled = reduce_states(states, mask, self.reduce_output)
        return Encoded(pooled, states, mask)

    def _final_states(self, final, nonempty: torch.Tensor) -> torch.Tensor:
        """The top layer's final state of each direction, [B, directions * size]; 0 for an empty row."""
        hidden = final[0] if isinstance(final, tuple) else final  # an LSTM's is (h, c)
        last = hidden[-self.directions:].transpose(0, 1).reshape(nonempty.shape[0], self.output_size)
        return last * nonempty.unsqueeze(-1).to(last.dtype)


class RNNSchema(RNNBodySchema, TokenInputSchema):
    pass


@register_encoder("rnn", schema=RNNSchema, types=TOKEN_TYPES)
class RNNEncoder(SequenceEncoder):
    """A recurrent network (LSTM, GRU or plain RNN) over the token embeddings."""

    def __init__(self, vocab_size: int, pad_id: int, vocab: list[str], *, embedding_size: int = 64,
                 dropout: float = 0.0, embeddings_trainable: bool = True, pretrained_embeddings: str | None = None,
                 cell_type: str = "lstm", num_layers: int = 1, state_size: int = 64, bidirectional: bool = False,
                 reduce_output: str = "last"):
        super().__init__(
            TokenEmbedding(vocab_size, pad_id, vocab, embedding_size=embedding_size, dropout=dropout,
                           embeddings_trainable=embeddings_trainable, pretrained_embeddings=pretrained_embeddings),
            _RNN(embedding_size, cell_type=cell_type, num_layers=num_layers, state_size=state_size,
                 bidirectional=bidirectional, dropout=dropout, reduce_output=reduce_output))


class TimeseriesRNNSchema(RNNBodySchema, StepInputSchema):
    pass


@register_encoder("rnn", schema=TimeseriesRNNSchema, types=TIMESERIES_TYPES)
class TimeseriesRNNEncoder(SequenceEncoder):
    """A recurrent network (LSTM, GRU or plain RNN) over the projected steps."""

    def __init__(self, *, embedding_size: int = 64, dropout: float = 0.0, cell_type: str = "lstm",
                 num_layers: int = 1, state_size: int = 64, bidirectional: bool = False, reduce_output: str = "last"):
        super().__init__(
            StepProjection(embedding_size=embedding_size, dropout=dropout),
            _RNN(embedding_size, cell_type=cell_type, num_layers=num_layers, state_size=state_size,
                 bidirectional=bidirectional, dropout=dropout, reduce_output=reduce_output))
