"""Losses per output type, registered with their settings.

Each loss is a module taking (logits, target) for one output feature and returning the mean loss;
data-derived arguments (the vocabulary and its frequencies) come before the keyword-only settings.
"""
from __future__ import annotations

import torch
from torch import nn

from framework.config import fields as f
from framework.errors import DataError
from framework.registry import register_loss


class NoSettings(f.Schema):
    pass


@register_loss("mse", schema=NoSettings, types=("number",))
class MSELoss(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(logits.squeeze(-1).float(), target)


@register_loss("mae", schema=NoSettings, types=("number",))
class MAELoss(nn.Module):
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.l1_loss(logits.squeeze(-1).float(), target)


class HuberSchema(f.Schema):
    delta = f.Float(1.0, min=0.0, min_inclusive=False, doc="where the loss turns from quadratic to linear")


@register_loss("huber", schema=HuberSchema, types=("number",))
class HuberLoss(nn.Module):
    def __init__(self, *, delta: float = 1.0):
        super().__init__()
        self.delta = delta

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.huber_loss(logits.squeeze(-1).float(), target, delta=self.delta)


class BinaryCrossEntropySchema(f.Schema):
    positive_class_weight = f.Float(None, min=0.0, min_inclusive=False,
                                    doc="weight of positive examples (e.g. negatives/positives for imbalance)")


@register_loss("binary_cross_entropy", schema=BinaryCrossEntropySchema, types=("binary",))
class BinaryCrossEntropy(nn.Module):
    def __init__(self, *, positive_class_weight: float | None = None):
        super().__init__()
        weight = None if positive_class_weight is None else torch.tensor(positive_class_weight)
        self.register_buffer("pos_weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(
            logits.squeeze(-1).float(), target, pos_weight=self.pos_weight)


class SoftmaxCrossEntropySchema(f.Schema):
    class_weights = f.Any_(None, doc="'balanced', or a mapping label -> weight (unlisted labels weigh 1)")
    label_smoothing = f.Float(0.0, min=0.0, max=1.0, max_inclusive=False, doc="label smoothing amount")


def class_weight_vector(vocab: list[str], frequencies: list[int], class_weights) -> torch.Tensor | None:
    if class_weights is None:
        return None
    if class_weights == "balanced":
        counts = torch.tensor(frequencies, dtype=torch.float32)
        present = counts > 0
        weights = torch.ones_like(counts)
        weights[present] = counts[present].sum() / (present.sum() * counts[present])
        return weights
    if not isinstance(class_weights, dict):
        raise DataError("loss.class_weights must be 'balanced' or a mapping label -> weight, "
                        f"got {class_weights!r}")
    unknown = sorted(set(map(str, class_weights)) - set(vocab))
    if unknown:
        raise DataError(f"loss.class_weights names labels not in the training data: {unknown}; "
                        f"labels are {vocab[1:]}")
    lookup = {str(k): float(v) for k, v in class_weights.items()}
    return torch.tensor([lookup.get(label, 1.0) for label in vocab])


@register_loss("softmax_cross_entropy", schema=SoftmaxCrossEntropySchema, types=("category",))
class SoftmaxCrossEntropy(nn.Module):
    def __init__(self, vocab: list[str], frequencies: list[int], *, class_weights=None,
                 label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("weight", class_weight_vector(vocab, frequencies, class_weights), persistent=False)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.float(), target, weight=self.weight,
                                           label_smoothing=self.label_smoothing)
