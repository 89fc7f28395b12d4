"""Reading a sequence encoder's per-token states: zeroing padding, and one vector per row.

Every reduction reads the real tokens only (mask True), so padding never counts, and a row of padding
only reduces to zeros rather than to the NaN of an empty mean. Not an encoder module (the leading
underscore keeps it out of the package's auto-import); the sequence encoders import it.
"""
from __future__ import annotations

import torch

from framework.models.encoded import Encoded


def _sum(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (states * mask.unsqueeze(-1).to(states.dtype)).sum(dim=1)


def _mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(states.dtype)
    return _sum(states, mask) / count


def _max(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # the dtype's lowest finite value rather than -inf: no inf reaches the backward pass
    largest = states.masked_fill(~mask.unsqueeze(-1), torch.finfo(states.dtype).min).amax(dim=1)
    return torch.where(mask.any(dim=1, keepdim=True), largest, torch.zeros_like(largest))


def _at(states: torch.Tensor, mask: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    picked = states[torch.arange(states.shape[0], device=states.device), position]
    return picked * mask.any(dim=1, keepdim=True).to(states.dtype)  # a row of padding only: 0


def _first(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return _at(states, mask, mask.int().argmax(dim=1))  # argmax returns the first of equal maxima


def _last(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return _at(states, mask, positions.masked_fill(~mask, 0).amax(dim=1))


REDUCTIONS = {"mean": _mean, "sum": _sum, "max": _max, "first": _first, "last": _last}


def reduce_states(states: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """[B, T, D] states -> [B, D] over the real tokens (mask True)."""
    return REDUCTIONS[how](states, mask)


def zero_padding(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return states.masked_fill(~mask.unsqueeze(-1), 0.0)


def encoded(states: torch.Tensor, mask: torch.Tensor, reduce_output: str) -> Encoded:
    """The states zeroed at padding, their reduction and their mask: what a sequence encoder returns."""
    states = zero_padding(states, mask)
    return Encoded(reduce_states(states, mask, reduce_output), states, mask)


def has_batch_norm(module: torch.nn.Module) -> bool:
    return any(isinstance(sub, torch.nn.modules.batchnorm._BatchNorm) for sub in module.modules())


def per_token(module: torch.nn.Module, states: torch.Tensor, mask: torch.Tensor, width: int,
              batch_norm: bool) -> torch.Tensor:
    """`module` applied to each token, for `encoded` (which zeroes the padding). With a batch norm inside
    (`batch_norm`, from `has_batch_norm`, decided once), only the real tokens are gathered into one
    [tokens, D] batch, so its statistics see no padding; without one, running over every position is the
    same and skips the gather and scatter."""
    if not batch_norm:
        return module(states)
    real = module(states[mask])
    out = real.new_zeros(*mask.shape, width)  # the module's dtype, which autocast may have lowered
    out[mask] = real
    return out
