"""Evaluation: logits of a whole split, then every metric once, with one host sync."""
from __future__ import annotations

import torch

from framework.data.dataset import ArrayDataset
from framework.models.ecd import ECD
from framework.registry import metrics
from framework.training.device import autocast


@torch.inference_mode()
def split_logits(model: ECD, dataset: ArrayDataset, batch_size: int, device: torch.device,
                 precision: str = "fp32", outputs: bool = True) -> tuple[dict, dict]:
    """Concatenated logits of every output, and the targets (when the dataset holds them)."""
    model.eval()
    names = model.input_names + (list(model.output_features) if outputs else [])
    logits: dict[str, list] = {name: [] for name in model.output_features}
    targets: dict[str, list] = {name: [] for name in model.output_features} if outputs else {}
    for batch in dataset.batches(batch_size, names=names, device=device):
        with autocast(precision, device):
            out = model(batch)
        for name, value in out.items():
            logits[name].append(value.float())
        for name in targets:
            targets[name].append(batch[name])
    return ({k: torch.cat(v) for k, v in logits.items()}, {k: torch.cat(v) for k, v in targets.items()})


def compute_metrics(model: ECD, logits: dict, targets: dict) -> dict[str, dict[str, float]]:
    values: dict[str, dict[str, torch.Tensor]] = {}
    combined = 0.0
    for name, feature in model.output_features.items():
        outputs = feature.predict(logits[name])
        outputs["loss"] = feature.loss(logits[name], targets[name])
        combined = combined + model.weights[name] * outputs["loss"]
        target = feature.kind.metric_target(targets[name], feature.metadata)
        values[name] = {metric: metrics.get(metric, feature.config["type"]).cls(outputs, target, feature.config)
                        for metric in feature.config["metrics"]}
    flat = [(name, metric, value) for name, group in values.items() for metric, value in group.items()]
    numbers = torch.stack([value.double().reshape(()) for _, _, value in flat] + [torch.as_tensor(combined).double()])
    host = numbers.tolist()  # the one sync point of an evaluation
    result: dict[str, dict[str, float]] = {}
    for (name, metric, _), number in zip(flat, host):
        result.setdefault(name, {})[metric] = number
    result["combined"] = {"loss": host[-1]}
    return result


def evaluate(model: ECD, dataset: ArrayDataset, batch_size: int, device: torch.device,
             precision: str = "fp32") -> dict[str, dict[str, float]]:
    logits, targets = split_logits(model, dataset, batch_size, device, precision)
    return compute_metrics(model, logits, targets)
