"""Category encoders: a learned embedding per label, or a fixed one-hot vector."""
import torch
from torch import nn

from framework.config import fields as f
from framework.registry import register_encoder

INITIALIZERS = {
    "normal": lambda w: nn.init.normal_(w, std=1.0),
    "uniform": lambda w: nn.init.uniform_(w, -1.0, 1.0),
    "xavier_uniform": nn.init.xavier_uniform_,
    "xavier_normal": nn.init.xavier_normal_,
}


class CategoryEmbedSchema(f.Schema):
    embedding_size = f.Int(32, min=1, doc="width of each label's embedding (capped at the vocabulary size)")
    dropout = f.Float(0.0, min=0.0, max=1.0, max_inclusive=False, doc="dropout on the embedding")
    initializer = f.Choice(INITIALIZERS, "xavier_uniform", doc="how embeddings are initialised")
    trainable = f.Bool(True, doc="update the embeddings during training")


@register_encoder("dense", schema=CategoryEmbedSchema, types=("category",))
class CategoryEmbedEncoder(nn.Module):
    def __init__(self, vocab_size: int, *, embedding_size: int = 32, dropout: float = 0.0,
                 initializer: str = "xavier_uniform", trainable: bool = True):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, min(embedding_size, vocab_size))
        INITIALIZERS[initializer](self.embedding.weight)
        self.embedding.weight.requires_grad_(trainable)
        self.dropout = nn.Dropout(dropout)
        self.output_size = self.embedding.embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.embedding(x))


class CategoryOneHotSchema(f.Schema):
    pass


@register_encoder("sparse", schema=CategoryOneHotSchema, types=("category",))
class CategoryOneHotEncoder(nn.Module):
    def __init__(self, vocab_size: int):
        super().__init__()
        self.output_size = vocab_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x, self.output_size).float()
