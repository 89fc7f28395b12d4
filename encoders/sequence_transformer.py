"""`transformer`: self-attention layers over the tokens, padding masked out of every attention."""
from __future__ import annotations

import math

import marshmallow
import torch
from torch import nn

from encoders._sequence_input import (TIMESERIES_TYPES, TOKEN_TYPES, SequenceEncoder, StepInputSchema,
                                      StepProjection, TokenEmbedding, TokenInputSchema)
from encoders._sequence_pooling import encoded
from framework.config import fields as f
from framework.errors import FrameworkError
from framework.models.encoded import Encoded
from framework.registry import register_encoder


class _Sinusoidal(nn.Module):
    """The fixed sine and cosine positions of Vaswani et al. (2017): no weights, no length limit."""

    def __init__(self, size: int, max_sequence_length: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        position = torch.arange(x.shape[1], device=x.device, dtype=torch.float32).unsqueeze(-1)
        frequency = torch.exp(torch.arange(0, self.size, 2, device=x.device) * (-math.log(10000.0) / self.size))
        table = torch.zeros(x.shape[1], self.size, device=x.device)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency[: self.size // 2])
        return table.to(x.dtype)


class _Learned(nn.Module):
    """A learned vector per position, up to `max_sequence_length` positions."""

    def __init__(self, size: int, max_sequence_length: int):
        super().__init__()
        self.embedding = nn.Embedding(max_sequence_length, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, limit = x.shape[1], self.embedding.num_embeddings
        if length > limit:
            raise FrameworkError(f"the transformer encoder's learned positions cover {limit} tokens, but a batch "
                                 f"has rows of {length}: raise the encoder's max_sequence_length, or shorten the "
                                 "feature's rows in its preprocessing")
        return self.embedding.weight[:length]


POSITIONAL_ENCODINGS = {"sinusoidal": _Sinusoidal, "learned": _Learned}


class TransformerBodySchema(f.Schema):
    num_layers = f.Int(1, min=1, doc="number of transformer layers")
    num_heads = f.Int(4, min=1, doc="attention heads per layer (must divide hidden_size)")
    hidden_size = f.Int(64, min=1, doc="width of the layers and of the output; the input vectors are projected "
                                       "to it when their width differs")
    feedforward_size = f.Int(128, min=1, doc="width of each layer's feed-forward block")
    positional_encoding = f.Choice(POSITIONAL_ENCODINGS, "sinusoidal",
                                   doc="how positions are told apart: fixed sinusoids, or a learned vector each")
    max_sequence_length = f.Int(512, min=1, doc="learned positional_encoding: the longest row it can read")
    reduce_output = f.Choice(["mean", "first", "last", "sum", "max"], "mean",
                             doc="how the per-token states become one per row (first: the first real token's)")

    @marshmallow.validates_schema
    def _heads_divide_the_width(self, data: dict, **kwargs) -> None:
        heads, width = data.get("num_heads"), data.get("hidden_size")
        if heads and width and width % heads:
            raise marshmallow.ValidationError(f"must divide hidden_size ({width}) evenly; got {heads} heads",
                                              "num_heads")


class _Transformer(nn.Module):
    def __init__(self, input_size: int, *, num_layers: int, num_heads: int, hidden_size: int, feedforward_size: int,
                 dropout: float, positional_encoding: str, max_sequence_length: int, reduce_output: str):
        super().__init__()
        self.project = nn.Identity() if input_size == hidden_size else nn.Linear(input_size, hidden_size)
        self.positions = POSITIONAL_ENCODINGS[positional_encoding](hidden_size, max_sequence_length)
        layer = nn.TransformerEncoderLayer(hidden_size, num_heads, feedforward_size, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        # pre-norm layers, so the stack ends with a norm of its own; nested tensors do not serve pre-norm
        self.layers = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(hidden_size),
                                            enable_nested_tensor=False)
        self.reduce_output = reduce_output
        self.output_size = hidden_size

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> Encoded:
        x = self.project(vectors)
        x = x + self.positions(x)
        # a row of padding only lets its first position be attended to (a softmax over nothing is NaN);
        # its states are zeroed afterwards like every padding position
        ignored = ~mask
        ignored[:, 0] &= mask.any(dim=1)
        return encoded(self.layers(x, src_key_padding_mask=ignored), mask, self.reduce_output)


class TransformerSchema(TransformerBodySchema, TokenInputSchema):
    pass


@register_encoder("transformer", schema=TransformerSchema, types=TOKEN_TYPES)
class TransformerEncoder(SequenceEncoder):
    """Transformer layers (self-attention over the real tokens) on the token embeddings plus positions."""

    def __init__(self, vocab_size: int, pad_id: int, vocab: list[str], *, embedding_size: int = 64,
                 dropout: float = 0.0, embeddings_trainable: bool = True, pretrained_embeddings: str | None = None,
                 num_layers: int = 1, num_heads: int = 4, hidden_size: int = 64, feedforward_size: int = 128,
                 positional_encoding: str = "sinusoidal", max_sequence_length: int = 512, reduce_output: str = "mean"):
        super().__init__(
            TokenEmbedding(vocab_size, pad_id, vocab, embedding_size=embedding_size, dropout=dropout,
                           embeddings_trainable=embeddings_trainable, pretrained_embeddings=pretrained_embeddings),
            _Transformer(embedding_size, num_layers=num_layers, num_heads=num_heads, hidden_size=hidden_size,
                         feedforward_size=feedforward_size, dropout=dropout, positional_encoding=positional_encoding,
                         max_sequence_length=max_sequence_length, reduce_output=reduce_output))


class TimeseriesTransformerSchema(TransformerBodySchema, StepInputSchema):
    pass


@register_encoder("transformer", schema=TimeseriesTransformerSchema, types=TIMESERIES_TYPES)
class TimeseriesTransformerEncoder(SequenceEncoder):
    """Transformer layers (self-attention over the real steps) on the projected steps plus positions."""

    def __init__(self, *, embedding_size: int = 64, dropout: float = 0.0, num_layers: int = 1, num_heads: int = 4,
                 hidden_size: int = 64, feedforward_size: int = 128, positional_encoding: str = "sinusoidal",
                 max_sequence_length: int = 512, reduce_output: str = "mean"):
        super().__init__(
            StepProjection(embedding_size=embedding_size, dropout=dropout),
            _Transformer(embedding_size, num_layers=num_layers, num_heads=num_heads, hidden_size=hidden_size,
                         feedforward_size=feedforward_size, dropout=dropout, positional_encoding=positional_encoding,
                         max_sequence_length=max_sequence_length, reduce_output=reduce_output))
