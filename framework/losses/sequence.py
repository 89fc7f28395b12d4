"""Losses of text and sequence outputs: logits [B, T, V] against target ids [B, T'], padding ignored."""
from __future__ import annotations

import torch
from torch import nn

from framework.config import fields as f
from framework.registry import register_loss


class SequenceSoftmaxCrossEntropySchema(f.Schema):
    label_smoothing = f.Float(0.0, min=0.0, max=1.0, max_inclusive=False, doc="label smoothing amount")


def fit_length(logits: torch.Tensor, length: int) -> torch.Tensor:
    """Logits [B, T, V] cut or padded with zeros (a uniform guess) to `length` steps: free-running
    logits stop where decoding stopped, not where the target does."""
    steps = logits.shape[1]
    if steps >= length:
        return logits[:, :length]
    return nn.functional.pad(logits, (0, 0, 0, length - steps))


@register_loss("sequence_softmax_cross_entropy", schema=SequenceSoftmaxCrossEntropySchema, types=("text", "sequence"))
class SequenceSoftmaxCrossEntropy(nn.Module):
    """The mean cross entropy over the real target tokens (<EOS> included, <PAD> ignored).

    `token_count(target)` is the number of tokens that mean is over, so an evaluation can sum the
    loss over batches as mean * count and divide by the split's total count.
    """

    def __init__(self, pad_id: int, *, label_smoothing: float = 0.0):
        super().__init__()
        self.pad_id = pad_id
        self.label_smoothing = label_smoothing

    def token_count(self, target: torch.Tensor) -> torch.Tensor:
        return (target != self.pad_id).sum()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = fit_length(logits, target.shape[1])
        total = nn.functional.cross_entropy(logits.float().flatten(0, 1), target.flatten(), ignore_index=self.pad_id,
                                            label_smoothing=self.label_smoothing, reduction="sum")
        # a sum over the count, not reduction="mean": a batch of only padding gives 0, not NaN
        return total / self.token_count(target).clamp_min(1)
