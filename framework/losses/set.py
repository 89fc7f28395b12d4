"""The loss of set outputs: binary cross-entropy of each label's logit, averaged over labels and rows.

Targets arrive as [B, T] padded label ids and become [B, V] indicators; the `<PAD>` column is left
out of the loss.
"""
from __future__ import annotations

import torch
from torch import nn

from framework.config import fields as f
from framework.errors import DataError
from framework.features.set import PAD_ID, multi_hot
from framework.registry import register_loss


class SigmoidCrossEntropySchema(f.Schema):
    positive_class_weights = f.Any_(
        None, doc="weight of a label's positive examples: one number for every label, or a mapping "
                  "label -> weight (unlisted labels weigh 1); above 1 favours recall")


def positive_weight_vector(vocab: list[str], weights) -> torch.Tensor | None:
    if weights is None:
        return None
    if isinstance(weights, (int, float)) and not isinstance(weights, bool) and weights > 0:
        return torch.full((len(vocab),), float(weights))
    if not isinstance(weights, dict):
        raise DataError("loss.positive_class_weights must be a positive number or a mapping label -> weight, "
                        f"got {weights!r}")
    unknown = sorted(set(map(str, weights)) - set(vocab[PAD_ID + 1:]))
    if unknown:
        raise DataError(f"loss.positive_class_weights names labels not in the training data: {unknown}; "
                        f"labels are {vocab[PAD_ID + 1:]}")
    lookup = {str(label): float(weight) for label, weight in weights.items()}
    if min(lookup.values(), default=1.0) <= 0:
        raise DataError(f"loss.positive_class_weights must be positive, got {weights!r}")
    return torch.tensor([lookup.get(label, 1.0) for label in vocab])


@register_loss("sigmoid_cross_entropy", schema=SigmoidCrossEntropySchema, types=("set",))
class SigmoidCrossEntropy(nn.Module):
    def __init__(self, vocab: list[str], *, positive_class_weights=None):
        super().__init__()
        weights = positive_weight_vector(vocab, positive_class_weights)
        self.register_buffer("pos_weight", None if weights is None else weights[PAD_ID + 1:], persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        labels = multi_hot(target, logits.shape[-1], dtype=torch.float32)
        return nn.functional.binary_cross_entropy_with_logits(
            logits[:, PAD_ID + 1:].float(), labels[:, PAD_ID + 1:], pos_weight=self.pos_weight)
