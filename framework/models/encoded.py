"""What an encoder or a combiner hands on: a pooled vector per row, and per-token states if any.

Tabular encoders return a plain tensor (the pooled vector); sequence encoders return Encoded with
their states and mask too, for the combiners and decoders that work per token. As a tuple, a
forward hook's `output[0]` is the pooled vector.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class Encoded(NamedTuple):
    pooled: torch.Tensor  # [batch, size]
    states: torch.Tensor | None = None  # [batch, tokens, size]
    mask: torch.Tensor | None = None  # [batch, tokens], True at real tokens


def as_encoded(output: torch.Tensor | Encoded) -> Encoded:
    return output if isinstance(output, Encoded) else Encoded(output)
