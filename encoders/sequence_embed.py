"""`embed`: each token's (or step's) vector, reduced over the real tokens; no interaction between tokens."""
from __future__ import annotations

import torch
from torch import nn

from encoders._sequence_input import (TIMESERIES_TYPES, TOKEN_TYPES, SequenceEncoder, StepInputSchema,
                                      StepProjection, TokenEmbedding, TokenInputSchema)
from encoders._sequence_pooling import encoded
from framework.config import fields as f
from framework.models.encoded import Encoded
from framework.registry import register_encoder


class EmbedBodySchema(f.Schema):
    output_size = f.Int(None, min=1, doc="width of the output: the vectors are projected to it; null keeps "
                                         "the embedding width (no projection)")
    reduce_output = f.Choice(["mean", "sum", "max"], "mean", doc="how the per-token vectors become one per row")


class _Embed(nn.Module):
    def __init__(self, input_size: int, *, output_size: int | None, reduce_output: str):
        super().__init__()
        keep = output_size is None or output_size == input_size
        self.project = nn.Identity() if keep else nn.Linear(input_size, output_size)
        self.reduce_output = reduce_output
        self.output_size = input_size if keep else output_size

    def forward(self, vectors: torch.Tensor, mask: torch.Tensor) -> Encoded:
        return encoded(self.project(vectors), mask, self.reduce_output)


class EmbedSchema(EmbedBodySchema, TokenInputSchema):
    pass


@register_encoder("embed", schema=EmbedSchema, types=TOKEN_TYPES)
class EmbedEncoder(SequenceEncoder):
    """Token embeddings reduced over the real tokens (a bag of embeddings)."""

    def __init__(self, vocab_size: int, pad_id: int, vocab: list[str], *, embedding_size: int = 64,
                 dropout: float = 0.0, embeddings_trainable: bool = True, pretrained_embeddings: str | None = None,
                 output_size: int | None = None, reduce_output: str = "mean"):
        super().__init__(
            TokenEmbedding(vocab_size, pad_id, vocab, embedding_size=embedding_size, dropout=dropout,
                           embeddings_trainable=embeddings_trainable, pretrained_embeddings=pretrained_embeddings),
            _Embed(embedding_size, output_size=output_size, reduce_output=reduce_output))


class TimeseriesEmbedSchema(EmbedBodySchema, StepInputSchema):
    pass


@register_encoder("embed", schema=TimeseriesEmbedSchema, types=TIMESERIES_TYPES)
class TimeseriesEmbedEncoder(SequenceEncoder):
    """Each time step projected to a vector, reduced over the real steps."""

    def __init__(self, *, embedding_size: int = 64, dropout: float = 0.0, output_size: int | None = None,
                 reduce_output: str = "mean"):
        super().__init__(StepProjection(embedding_size=embedding_size, dropout=dropout),
                         _Embed(embedding_size, output_size=output_size, reduce_output=reduce_output))
