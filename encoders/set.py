"""Set and bag encoders: the embeddings of a row's labels summed (or averaged), then an fc stack.

A set's labels weigh 1 each; a bag's weigh their count, the log of it, or 1. `<PAD>` (id 0) has a
fixed zero embedding, so padding never reaches the result.
"""
import torch
from torch import nn

from framework.config import fields as f
from framework.models.fc_stack import FCStack, FCStackSchema
from framework.registry import register_encoder

PAD_ID = 0
BAG_WEIGHTS = {
    "count": lambda counts: counts,
    "log_count": lambda counts: torch.where(counts > 0, 1 + torch.log(counts.clamp_min(1)), 0.0),
    "presence": lambda counts: (counts > 0).float(),
}


class SetEmbedSchema(FCStackSchema):
    embedding_size = f.Int(50, min=1, doc="width of each label's embedding")
    reduce_output = f.Choice(["sum", "mean"], "sum", doc="how a row's label embeddings combine (mean is weighted)")


class WeightedEmbeddingSum(nn.Module):
    """[B, T] ids and [B, T] weights -> the weighted sum or mean of their embeddings -> an fc stack."""

    def __init__(self, vocab_size: int, embedding_size: int, reduce_output: str, stack: dict):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=PAD_ID)
        self.mean = reduce_output == "mean"
        self.stack = FCStack(embedding_size, **stack)
        self.output_size = self.stack.output_size

    def forward(self, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        pooled = torch.einsum("bt,bte->be", weights, self.embedding(ids))
        if self.mean:  # an empty row stays zero
            pooled = pooled / weights.sum(dim=1, keepdim=True).clamp_min(1.0)
        return self.stack(pooled)


@register_encoder("embed", schema=SetEmbedSchema, types=("set",))
class SetEmbedEncoder(nn.Module):
    def __init__(self, vocab_size: int, *, num_fc_layers: int = 0, output_size: int = 256,
                 activation: str = "relu", norm: str | None = None, dropout: float = 0.0,
                 residual: bool = False, embedding_size: int = 50, reduce_output: str = "sum"):
        super().__init__()
        stack = dict(num_fc_layers=num_fc_layers, output_size=output_size, activation=activation, norm=norm,
                     dropout=dropout, residual=residual)
        self.pool = WeightedEmbeddingSum(vocab_size, embedding_size, reduce_output, stack)
        self.output_size = self.pool.output_size

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.pool(ids, (ids != PAD_ID).float())


class BagEmbedSchema(SetEmbedSchema):
    weighting = f.Choice(BAG_WEIGHTS, "count",
                         doc="what a label weighs: its count, 1 + log(count), or 1 (presence only)")


@register_encoder("embed", schema=BagEmbedSchema, types=("bag",))
class BagEmbedEncoder(nn.Module):
    def __init__(self, vocab_size: int, *, num_fc_layers: int = 0, output_size: int = 256,
                 activation: str = "relu", norm: str | None = None, dropout: float = 0.0,
                 residual: bool = False, embedding_size: int = 50, reduce_output: str = "sum",
                 weighting: str = "count"):
        super().__init__()
        stack = dict(num_fc_layers=num_fc_layers, output_size=output_size, activation=activation, norm=norm,
                     dropout=dropout, residual=residual)
        self.pool = WeightedEmbeddingSum(vocab_size, embedding_size, reduce_output, stack)
        self.weights = BAG_WEIGHTS[weighting]
        self.output_size = self.pool.output_size

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """[B, T, 2] rows of (id, count), padded with (0, 0)."""
        return self.pool(pairs[..., 0], self.weights(pairs[..., 1].float()))
