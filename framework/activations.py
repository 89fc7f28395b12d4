"""Collecting the outputs of named layers (embeddings) by forward hooks, in row order."""
from __future__ import annotations

import numpy as np
import torch

from framework.config.problems import did_you_mean
from framework.data.dataset import ArrayDataset
from framework.errors import FrameworkError
from framework.models.ecd import ECD
from framework.training.evaluation import run_split


def layer_names(module: ECD) -> list[str]:
    """Modules that run in a forward pass: not containers, not losses (they run in training only)."""
    return [name for name, sub in module.named_modules()
            if name and not isinstance(sub, (torch.nn.ModuleDict, torch.nn.ModuleList))
            and ".loss_fn" not in f".{name}"]


def collect(module: ECD, arrays: ArrayDataset, layers: list[str], batch_size: int,
            device: torch.device) -> dict[str, np.ndarray]:
    modules = dict(module.named_modules())
    valid = layer_names(module)
    if not layers:
        raise FrameworkError(f"no layers given; layers are: {', '.join(valid)}")
    for layer in layers:
        if layer not in valid:
            raise FrameworkError(f"unknown layer '{layer}'; {did_you_mean(layer, valid)}")
    captured: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}

    def hook_for(layer: str):
        def hook(_module, _inputs, output):
            tensor = output[0] if isinstance(output, (tuple, list)) else output
            captured[layer].append(tensor.detach().float().cpu())
        return hook

    handles = [modules[layer].register_forward_hook(hook_for(layer)) for layer in layers]
    try:
        run_split(module, arrays, batch_size, device, with_targets=False, progress="collecting activations")
    finally:
        for handle in handles:
            handle.remove()
    return {layer: torch.cat(chunks).numpy() if chunks else np.zeros((0,)) for layer, chunks in captured.items()}
