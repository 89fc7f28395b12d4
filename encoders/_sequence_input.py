"""The first layer of every sequence encoder: token ids or time steps become per-token vectors and a mask.

A sequence encoder is one of these input layers followed by a body over `(vectors [B, T, E], mask [B, T])`
(`SequenceEncoder` wires the two). The text/sequence class and the timeseries class of an encoder share
the body and differ only in this layer, so each encoder name serves both kinds of input. Not an encoder
module (the leading underscore keeps it out of the package's auto-import); the sequence encoders import it.
"""
from __future__ import annotations

import marshmallow
import torch
from marshmallow import validate
from torch import nn

from framework.config import fields as f

TOKEN_TYPES = ("text", "sequence")
TIMESERIES_TYPES = ("timeseries",)


def IntList(default: list[int], *, min: int = 1, doc: str = "") -> marshmallow.fields.Field:
    """A non-empty list of integers; each load gets its own copy of the default."""
    return marshmallow.fields.List(marshmallow.fields.Integer(strict=True, validate=validate.Range(min=min)),
                                   load_default=lambda: list(default), validate=validate.Length(min=1),
                                   metadata={"doc": doc})


def Dropout() -> marshmallow.fields.Field:
    """The one dropout setting of a sequence encoder, also declared by bodies whose bases declare their own."""
    return f.Float(0.0, min=0.0, max=1.0, max_inclusive=False,
                   doc="dropout probability on the input vectors and after the encoder's layers")


class StepInputSchema(f.Schema):
    """What every timeseries encoder reads its steps with (and every text/sequence encoder its tokens)."""

    embedding_size = f.Int(64, min=1, doc="width of each token's (or time step's) vector")
    dropout = Dropout()


class TokenInputSchema(StepInputSchema):
    embedding_size = f.Int(64, min=1, doc="width of each token's embedding; with pretrained_embeddings, the "
                                          "file's vector width")
    embeddings_trainable = f.Bool(True, doc="update the token embeddings during training (false: frozen)")
    pretrained_embeddings = f.Str(None, doc="path of a GloVe-format text file (`word v1 v2 ...` a line) whose "
                                            "vectors initialise the embeddings of the words it holds; null: random")


class TokenEmbedding(nn.Module):
    """Token ids [B, T] -> embeddings [B, T, E] and the mask of real tokens, `ids != pad_id`."""

    def __init__(self, vocab_size: int, pad_id: int, vocab: list[str], *, embedding_size: int, dropout: float,
                 embeddings_trainable: bool, pretrained_embeddings: str | None):
        super().__init__()
        self.pad_id = pad_id
        # pad_id may lie outside the table (some tokenizers); then no row is reserved for it
        padding_idx = pad_id if 0 <= pad_id < vocab_size else None
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=padding_idx)
        if pretrained_embeddings is not None:
            from encoders.word_embeddings import pretrained_embedding_matrix

            table = pretrained_embedding_matrix(pretrained_embeddings, vocab[:vocab_size], embedding_size)
            with torch.no_grad():
                self.embedding.weight[:len(table)] = table
                if padding_idx is not None:
                    self.embedding.weight[padding_idx] = 0.0
        self.embedding.weight.requires_grad_(embeddings_trainable)
        self.dropout = nn.Dropout(dropout)
        self.output_size = embedding_size

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dropout(self.embedding(ids)), ids != self.pad_id


class StepProjection(nn.Module):
    """Values [B, T] (one a step) or [B, T, D] (`input_size` D a step, such as audio frames), padded with
    NaN -> each step projected to [B, T, E], and the mask of real steps (`~isnan` of a step's first value)."""

    def __init__(self, input_size: int = 1, *, embedding_size: int, dropout: float):
        super().__init__()
        self.project = nn.Linear(input_size, embedding_size)
        self.dropout = nn.Dropout(dropout)
        self.output_size = embedding_size

    def forward(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if values.dim() == 2:  # one value a step
            values = values.unsqueeze(-1)
        mask = ~torch.isnan(values[..., 0])
        values = values.masked_fill(~mask.unsqueeze(-1), 0.0)
        return self.dropout(self.project(values)), mask


class SequenceEncoder(nn.Module):
    """An input layer (TokenEmbedding or StepProjection) then a body over its vectors and mask that
    returns `Encoded`. The registered classes subclass it only to declare their settings."""

    def __init__(self, inputs: nn.Module, body: nn.Module):
        super().__init__()
        self.inputs = inputs
        self.body = body
        self.output_size = body.output_size

    def forward(self, x: torch.Tensor):
        vectors, mask = self.inputs(x)
        return self.body(vectors, mask)
