"""Date encoders over the [B, 9] calendar components (see framework/features/date.py).

`embed` learns an embedding per value of each component; `wave` reads each component as a point on
its cycle (sine and cosine). Both read the year as a number: offset from 2000, then standardised by
a batch norm whose running statistics learn the dataset's range of years.
"""
import math

import torch
from torch import nn

from framework.config import fields as f
from framework.models.fc_stack import FCStack, FCStackSchema
from framework.registry import register_encoder

YEAR, SECOND_OF_DAY = 0, 8
# column -> (number of embedding rows, indexed by the value itself; the period of its cycle)
CYCLES = {1: (13, 12), 2: (32, 31), 3: (7, 7), 4: (367, 366), 5: (24, 24), 6: (60, 60), 7: (60, 60)}
SECONDS_PER_DAY = 86400


class DateStackSchema(FCStackSchema):
    num_fc_layers = f.Int(1, min=0, doc="fully connected layers after the date's features")
    output_size = f.Int(32, min=1, doc="width of each of those layers")


class YearScale(nn.Module):
    """The year as one standardised number per row."""

    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(1)

    def forward(self, dates: torch.Tensor) -> torch.Tensor:
        return self.norm((dates[:, YEAR:YEAR + 1] - 2000).float())


def cyclic(values: torch.Tensor, period: float) -> torch.Tensor:
    """[B] values -> [B, 2]: sine and cosine of their angle on a cycle of `period`."""
    angle = values.float() * (2 * math.pi / period)
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1)


class DateEmbedSchema(DateStackSchema):
    embedding_size = f.Int(10, min=1, doc="width of each component's embedding")


@register_encoder("embed", schema=DateEmbedSchema, types=("date",))
class DateEmbedEncoder(nn.Module):
    def __init__(self, *, num_fc_layers: int = 1, output_size: int = 32, activation: str = "relu",
                 norm: str | None = None, dropout: float = 0.0, residual: bool = False, embedding_size: int = 10):
        super().__init__()
        self.year = YearScale()
        self.embeddings = nn.ModuleDict({str(c): nn.Embedding(rows, embedding_size) for c, (rows, _) in CYCLES.items()})
        self.stack = FCStack(len(CYCLES) * embedding_size + 3, num_fc_layers=num_fc_layers, output_size=output_size,
                             activation=activation, norm=norm, dropout=dropout, residual=residual)
        self.output_size = self.stack.output_size

    def forward(self, dates: torch.Tensor) -> torch.Tensor:
        parts = [self.year(dates), cyclic(dates[:, SECOND_OF_DAY], SECONDS_PER_DAY)]
        parts += [embedding(dates[:, int(c)].clamp(0, embedding.num_embeddings - 1))
                  for c, embedding in self.embeddings.items()]
        return self.stack(torch.cat(parts, dim=-1))


@register_encoder("wave", schema=DateStackSchema, types=("date",))
class DateWaveEncoder(nn.Module):
    def __init__(self, *, num_fc_layers: int = 1, output_size: int = 32, activation: str = "relu",
                 norm: str | None = None, dropout: float = 0.0, residual: bool = False):
        super().__init__()
        self.year = YearScale()
        self.stack = FCStack(2 * len(CYCLES) + 3, num_fc_layers=num_fc_layers, output_size=output_size,
                             activation=activation, norm=norm, dropout=dropout, residual=residual)
        self.output_size = self.stack.output_size

    def forward(self, dates: torch.Tensor) -> torch.Tensor:
        parts = [self.year(dates), cyclic(dates[:, SECOND_OF_DAY], SECONDS_PER_DAY)]
        parts += [cyclic(dates[:, column], period) for column, (_, period) in CYCLES.items()]
        return self.stack(torch.cat(parts, dim=-1))
