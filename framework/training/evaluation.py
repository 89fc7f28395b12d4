"""Evaluation: a whole split through the model, then every metric once, with one host sync.

Outputs of one value per row keep their logits for the whole split, so losses and metrics are exact
(never an average of batch averages). Text and sequence outputs would need [rows, tokens, vocabulary]
logits for that, which does not fit in memory for a real split: for them each batch contributes its
token loss sum and its predicted ids instead, which keeps the token-mean loss exact too. A generator
is scored on what it decodes by itself, and its loss on teacher-forced logits.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from framework.data.dataset import ArrayDataset
from framework.models.ecd import ECD
from framework.registry import metrics
from framework.training.device import autocast


@dataclass
class _Collected:
    logits: list = field(default_factory=list)
    predictions: dict = field(default_factory=dict)
    targets: list = field(default_factory=list)
    loss_sum: torch.Tensor | float = 0.0
    tokens: torch.Tensor | float = 0.0


@dataclass
class SplitOutputs:
    """Per output: the feature type's predictions over the split, the targets, and the mean loss."""

    predictions: dict[str, dict[str, torch.Tensor]]
    targets: dict[str, torch.Tensor]
    losses: dict[str, torch.Tensor]


def cat_padded(chunks: list[torch.Tensor], pad: float | int) -> torch.Tensor:
    """Batches concatenated along rows, the shorter ones padded along their second dimension
    (each batch is padded to its own longest row)."""
    if not chunks:
        return torch.zeros(0)
    if chunks[0].dim() < 2 or all(c.shape[1] == chunks[0].shape[1] for c in chunks):
        return torch.cat(chunks)
    width = max(c.shape[1] for c in chunks)
    return torch.cat([torch.nn.functional.pad(c, (0, 0) * (c.dim() - 2) + (0, width - c.shape[1]), value=pad)
                      for c in chunks])


def _pad_of(feature) -> int:
    return feature.metadata.get("pad_id", 0)


@torch.inference_mode()
def run_split(model: ECD, dataset: ArrayDataset, batch_size: int, device: torch.device, precision: str = "fp32",
              with_targets: bool = True, progress: str | None = None) -> SplitOutputs:
    """Every batch of `dataset` through the model; `progress` names a progress bar for long passes."""
    model.eval()
    names = model.input_names + (list(model.output_features) if with_targets else [])
    collected = {name: _Collected() for name in model.output_features}
    batches = dataset.batches(batch_size, names=names, device=device)
    if progress is not None:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=dataset.num_batches(batch_size), desc=progress, unit="batch", leave=False)
    for batch in batches:
        with autocast(precision, device):
            combined = model.combine(batch)
            for name, feature in model.output_features.items():
                into = collected[name]
                target = batch[name] if with_targets else None
                if with_targets:
                    into.targets.append(target)
                logits = feature(combined, target)
                if not feature.per_token:
                    into.logits.append(logits.float())
                    continue
                if with_targets:
                    tokens = (target != _pad_of(feature)).sum()
                    into.loss_sum = into.loss_sum + feature.loss(logits, target).float() * tokens
                    into.tokens = into.tokens + tokens
                if feature.generates and with_targets:
                    logits = feature(combined, None)
                for key, value in feature.predict(logits.float()).items():
                    into.predictions.setdefault(key, []).append(value)
    predictions, targets, losses = {}, {}, {}
    for name, feature in model.output_features.items():
        into = collected[name]
        if with_targets:
            targets[name] = cat_padded(into.targets, _pad_of(feature))
        if feature.per_token:
            pads = {"predictions": _pad_of(feature)}
            predictions[name] = {key: cat_padded(chunks, pads.get(key, 1.0)) for key, chunks in into.predictions.items()}
            if with_targets:
                losses[name] = torch.as_tensor(into.loss_sum) / torch.as_tensor(into.tokens).clamp_min(1)
        else:
            logits = torch.cat(into.logits)
            predictions[name] = feature.predict(logits)
            if with_targets:
                losses[name] = feature.loss(logits, targets[name])
    return SplitOutputs(predictions, targets, losses)


def compute_metrics(model: ECD, split: SplitOutputs) -> dict[str, dict[str, float]]:
    values: dict[str, dict[str, torch.Tensor]] = {}
    combined = 0.0
    for name, feature in model.output_features.items():
        outputs = dict(split.predictions[name])
        outputs["loss"] = split.losses[name]
        combined = combined + model.weights[name] * outputs["loss"]
        target = feature.kind.metric_target(split.targets[name], feature.metadata)
        settings = {**feature.config, "metadata": feature.metadata}
        values[name] = {metric: metrics.get(metric, feature.config["type"]).cls(outputs, target, settings)
                        for metric in feature.config["metrics"]}
    flat = [(name, metric, value) for name, group in values.items() for metric, value in group.items()]
    combined = torch.as_tensor(combined).double()
    # metrics computed on the host (BLEU, ROUGE) join the others on their device: still one sync
    numbers = torch.stack([torch.as_tensor(value).double().reshape(()).to(combined.device) for _, _, value in flat]
                          + [combined.reshape(())])
    host = numbers.tolist()  # the one sync point of an evaluation
    result: dict[str, dict[str, float]] = {}
    for (name, metric, _), number in zip(flat, host):
        result.setdefault(name, {})[metric] = number
    result["combined"] = {"loss": host[-1]}
    return result


def evaluate(model: ECD, dataset: ArrayDataset, batch_size: int, device: torch.device,
             precision: str = "fp32") -> dict[str, dict[str, float]]:
    return compute_metrics(model, run_split(model, dataset, batch_size, device, precision))
