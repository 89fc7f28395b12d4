"""Per-token work shared by the sequence combiners: aligning the inputs' states and reducing them.

Not a combiner module (the leading underscore keeps it out of the package's auto-import); the
`sequence_concat` and `sequence` combiners import it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from framework.errors import FrameworkError
from framework.models.encoded import Encoded


def _mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(states.dtype)
    return _sum(states, mask) / count


def _sum(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (states * mask.unsqueeze(-1).to(states.dtype)).sum(dim=1)


def _max(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    largest = states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), largest, torch.zeros_like(largest))  # a row of padding only: 0


def _last(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = positions.masked_fill(~mask, 0).amax(dim=1)  # the last real token, 0 for a row of padding only
    return states[torch.arange(states.shape[0], device=states.device), last]


REDUCTIONS = {"mean": _mean, "sum": _sum, "max": _max, "last": _last}


def reduce_states(states: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """[B, T, D] states -> [B, D], reading real tokens only (mask True), so padding never counts."""
    return REDUCTIONS[how](states, mask)


def concat_per_token(encoded: dict[str, Encoded], names: list[str], combiner: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-token concatenation of every input, in `names` order: sequence inputs' states side by
    side, each other input's pooled vector repeated at every token.

    Sequence inputs are aligned by position. Where their lengths differ (a pooling encoder shortens
    its states) the shorter are padded with zeros to the longest, and a token is real where any input
    has a real token. Each input's states are zero at its own padding, and every state is zero at
    tokens that are padding for all inputs.
    """
    sequences = [name for name in names if encoded[name].states is not None]
    if not sequences:
        raise FrameworkError(f"{combiner} needs at least one text/sequence/timeseries input (an input whose encoder "
                             f"returns per-token states); got only {', '.join(repr(n) for n in names)}")
    length = max(encoded[name].states.shape[1] for name in sequences)
    mask = None
    parts = []
    for name in names:
        states, own_mask = encoded[name].states, encoded[name].mask
        if states is None:
            pooled = encoded[name].pooled
            parts.append(pooled.unsqueeze(1).expand(-1, length, -1))
            continue
        missing = length - states.shape[1]
        # zero where this input has padding, though another input may have a real token there
        parts.append(F.pad(states.masked_fill(~own_mask.unsqueeze(-1), 0.0), (0, 0, 0, missing)))
        own_mask = F.pad(own_mask, (0, missing), value=False)
        mask = own_mask if mask is None else mask | own_mask
    states = torch.cat(parts, dim=-1).masked_fill(~mask.unsqueeze(-1), 0.0)
    return states, mask
