"""TabNet (Arik & Pfister, 2019): decision steps that each attend to a sparse subset of the features."""
from __future__ import annotations

import math
from itertools import accumulate, chain

import marshmallow
import torch
import torch.nn.functional as F
from torch import nn

from framework.config import fields as f
from framework.models.encoded import Encoded
from framework.registry import register_combiner


def sparsemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """The Euclidean projection of `logits` onto the probability simplex (Martins & Astudillo, 2016):
    like softmax it sums to 1, unlike softmax small entries are exactly 0. Autograd through the sort
    and the gather gives sparsemax's own Jacobian, so no custom backward is needed."""
    logits = logits - logits.amax(dim=dim, keepdim=True)  # shift-invariant; keeps the cumsum small
    ordered, _ = logits.sort(dim=dim, descending=True)
    shape = [1] * logits.dim()
    shape[dim] = -1
    k = torch.arange(1, logits.shape[dim] + 1, device=logits.device, dtype=logits.dtype).view(shape)
    cumulative = ordered.cumsum(dim) - 1
    support = (k * ordered > cumulative).sum(dim=dim, keepdim=True)  # how many entries stay non-zero
    threshold = cumulative.gather(dim, support - 1) / support.to(logits.dtype)
    return torch.clamp(logits - threshold, min=0)


class GhostBatchNorm(nn.Module):
    """Batch norm whose training statistics come from chunks of about `virtual_batch_size` rows (the
    "ghost batches" TabNet uses to regularise large batches); a plain batch norm without one and in eval."""

    def __init__(self, size: int, momentum: float, virtual_batch_size: int | None):
        super().__init__()
        self.bn = nn.BatchNorm1d(size, momentum=momentum)
        self.virtual_batch_size = virtual_batch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.virtual_batch_size is None or x.shape[0] <= self.virtual_batch_size:
            return self.bn(x)
        chunks = x.chunk(math.ceil(x.shape[0] / self.virtual_batch_size))  # even sizes: no chunk of one row
        return torch.cat([self.bn(chunk) for chunk in chunks])


class _GLUBlock(nn.Module):
    def __init__(self, input_size: int, size: int, momentum: float, virtual_batch_size: int | None):
        super().__init__()
        self.linear = nn.Linear(input_size, 2 * size, bias=False)
        self.norm = GhostBatchNorm(2 * size, momentum, virtual_batch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.norm(self.linear(x)), dim=-1)


class TabNetSchema(f.Schema):
    size = f.Int(32, min=1, doc="N_a: width of the part of each step's output that chooses the next step's mask")
    output_size = f.Int(32, min=1, doc="N_d: width of each step's decision output, and the combiner's output")
    num_steps = f.Int(3, min=1, doc="number of decision steps, each with its own feature mask")
    num_total_blocks = f.Int(4, min=1, doc="GLU blocks in each step's feature transformer, the shared ones included")
    num_shared_blocks = f.Int(2, min=0, doc="of those, the first blocks, shared by every step (at most num_total_blocks)")
    relaxation_factor = f.Float(1.5, min=1.0, doc="gamma: how freely a feature is used again at later steps "
                                                  "(1: each feature at one step only)")
    sparsity = f.Float(1e-4, min=0.0, doc="coefficient of the masks' entropy, added to the training loss to make "
                                          "them sparser (0: off)")
    bn_momentum = f.Float(0.02, min=0.0, max=1.0, doc="batch norm momentum (torch's convention: the weight of "
                                                      "each new batch in the running statistics)")
    bn_virtual_bs = f.Int(None, min=1, doc="ghost batch norm: training statistics over chunks of about this "
                                           "many rows (null: over the whole batch)")

    @marshmallow.validates_schema
    def _shared_blocks_are_some_of_the_blocks(self, data: dict, **kwargs) -> None:
        if data["num_shared_blocks"] > data["num_total_blocks"]:
            raise marshmallow.ValidationError(
                f"must be at most num_total_blocks ({data['num_total_blocks']})", "num_shared_blocks")


@register_combiner("tabnet", schema=TabNetSchema)
class TabNetCombiner(nn.Module):
    """TabNet's encoder over the concatenated input vectors: at each step an attentive transformer
    chooses a sparse mask of the features (sparsemax, with a prior that discourages features already
    used), and a feature transformer of GLU blocks reads the masked features.

    The output is the sum over steps of each step's ReLU decision vector, `[B, output_size]`.
    After each forward:
    - `aux_loss`: `sparsity` times the masks' mean entropy (a scalar tensor, part of the graph), or
      None when `sparsity` is 0. The trainer adds it to the training loss.
    - `attention_masks`: `[B, num_steps, D]` each step's mask over the D input columns (detached);
      each row of a step sums to 1 with exact zeros for unused columns.
    - `aggregated_mask`: `[B, D]` the masks weighted by each step's contribution to the output, summing
      to 1 per row (TabNet's feature importance); `input_slices` maps each input to its columns.
    """

    def __init__(self, input_sizes: dict[str, int], *, size: int = 32, output_size: int = 32, num_steps: int = 3,
                 num_total_blocks: int = 4, num_shared_blocks: int = 2, relaxation_factor: float = 1.5,
                 sparsity: float = 1e-4, bn_momentum: float = 0.02, bn_virtual_bs: int | None = None):
        super().__init__()
        self.names = list(input_sizes)
        starts = [0, *accumulate(input_sizes.values())]
        self.input_slices = {name: slice(a, b) for name, a, b in zip(self.names, starts, starts[1:])}
        columns, width = starts[-1], size + output_size
        self.output_size, self.num_steps = output_size, num_steps
        self.relaxation_factor, self.sparsity = relaxation_factor, sparsity
        bn = {"momentum": bn_momentum, "virtual_batch_size": bn_virtual_bs}

        def blocks(first: int, count: int) -> nn.ModuleList:  # the first block reads the features, the others `width`
            return nn.ModuleList(_GLUBlock(columns if first + i == 0 else width, width, **bn) for i in range(count))

        self.input_norm = nn.BatchNorm1d(columns, momentum=bn_momentum)
        self.shared = blocks(0, num_shared_blocks)
        # step 0 only chooses the first mask; steps 1..num_steps each decide
        self.steps = nn.ModuleList(blocks(num_shared_blocks, num_total_blocks - num_shared_blocks)
                                   for _ in range(num_steps + 1))
        self.attention = nn.ModuleList(nn.Sequential(nn.Linear(size, columns, bias=False), GhostBatchNorm(columns, **bn))
                                       for _ in range(num_steps))
        self.aux_loss: torch.Tensor | None = None
        self.attention_masks: torch.Tensor | None = None
        self.aggregated_mask: torch.Tensor | None = None

    def _features(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """The feature transformer of `step`: GLU blocks, each after the first with a residual scaled by sqrt(1/2)."""
        for i, block in enumerate(chain(self.shared, self.steps[step])):
            x = block(x) if i == 0 else (x + block(x)) * math.sqrt(0.5)
        return x

    def forward(self, encoded: dict[str, Encoded]) -> torch.Tensor:
        x = self.input_norm(torch.cat([encoded[name].pooled for name in self.names], dim=-1))
        prior = torch.ones_like(x)
        attended = self._features(x, 0)[:, self.output_size:]
        output, masks, contributions, entropy = 0.0, [], [], 0.0
        for step, attention in enumerate(self.attention, start=1):
            mask = sparsemax(attention(attended) * prior)
            prior = prior * (self.relaxation_factor - mask)
            hidden = self._features(mask * x, step)
            decision, attended = F.relu(hidden[:, :self.output_size]), hidden[:, self.output_size:]
            output = output + decision
            masks.append(mask)
            contributions.append(decision.sum(dim=1, keepdim=True))
            if self.sparsity:
                entropy = entropy + (-mask * torch.log(mask + 1e-15)).sum(dim=1).mean()
        self.aux_loss = self.sparsity * entropy / self.num_steps if self.sparsity else None
        self._explain(masks, contributions)
        return output

    @torch.no_grad()
    def _explain(self, masks: list[torch.Tensor], contributions: list[torch.Tensor]) -> None:
        self.attention_masks = torch.stack(masks, dim=1)
        importance = sum(c * m for c, m in zip(contributions, masks))
        self.aggregated_mask = importance / importance.sum(dim=1, keepdim=True).clamp(min=1e-12)
