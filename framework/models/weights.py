"""Model weights in safetensors: no pickle, so loading a model never runs code from the file."""
from __future__ import annotations

from pathlib import Path

import safetensors.torch
from torch import nn

from framework.errors import ModelDirError


def save_weights(model: nn.Module, path: Path) -> None:
    """Every tensor of the model, or only what `model.saved_state()` names (an LLM's adapter: its base
    weights come from the base model)."""
    if hasattr(model, "saved_state"):
        state = {name: tensor.contiguous() for name, tensor in model.saved_state().items()}
        safetensors.torch.save_file(state, str(path))
    else:
        safetensors.torch.save_model(model, str(path))


def load_weights(model: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise ModelDirError(f"weights file '{path}' does not exist")
    try:
        if hasattr(model, "load_saved_state"):
            missing, unexpected = model.load_saved_state(safetensors.torch.load_file(str(path)))
        else:
            missing, unexpected = safetensors.torch.load_model(model, str(path), strict=False)
    except Exception as error:  # noqa: BLE001 - safetensors raises several types for a damaged file
        raise ModelDirError(f"weights file '{path}' could not be read: {error}") from None
    if missing or unexpected:
        raise ModelDirError(f"weights file '{path}' does not match the model: missing {sorted(missing)[:5]}, "
                            f"unexpected {sorted(unexpected)[:5]}")
