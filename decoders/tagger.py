"""Per-token labels for text and sequence outputs: one set of logits for each of the combiner's states."""
from __future__ import annotations

import torch

from decoders.regressor import Projection, ProjectionSchema
from framework.errors import FrameworkError
from framework.models.encoded import Encoded, as_encoded
from framework.registry import register_decoder


@register_decoder("tagger", schema=ProjectionSchema, types=("text", "sequence"))
class Tagger(Projection):
    """Logits [B, T, V], T the number of states. The fc stack runs on the real tokens only (so batch
    norm sees no padding); padded positions get all-zero logits, whose argmax is id 0 (<PAD> for the
    built-in vocabularies)."""

    input_kind = "encoded"

    def forward(self, encoded: Encoded | torch.Tensor) -> torch.Tensor:
        encoded = as_encoded(encoded)
        if encoded.states is None:
            raise FrameworkError(
                "The tagger decoder needs per-token states: give the output an input feature with a sequence "
                "encoder and a combiner that keeps states (sequence_concat or sequence), or use the "
                "generator decoder.")
        states = encoded.states
        mask = encoded.mask
        if mask is None:
            mask = torch.ones(states.shape[:2], dtype=torch.bool, device=states.device)
        real = super().forward(states[mask])  # [tokens, V]
        logits = real.new_zeros(*states.shape[:2], real.shape[-1])
        logits[mask] = real
        return logits
