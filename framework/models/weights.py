"""Model weights in safetensors: no pickle, so loading a model never runs code from the file."""
from __future__ import annotations

from pathlib import Path

import safetensors.torch
from torch import nn

from framework.errors import ModelDirError


def save_weights(model: nn.Module, path: Path) -> None:
    """Every tensor of the model, or only what `model.saved_state()` names (an LLM's adapter, not the
    frozen base weights that load from the base model again)."""
    if not hasattr(model, "saved_state"):
        safetensors.torch.save_model(model, str(path))
        return
    state, storages = {}, set()
    for name, tensor in model.saved_state().items():
        storage = tensor.untyped_storage().data_ptr() if tensor.numel() else None
        # safetensors refuses tensors sharing memory (tied weights): a shared one is saved as a copy
        state[name] = tensor.clone().contiguous() if storage in storages else tensor.contiguous()
        storages.add(storage)
    safetensors.torch.save_file(state, str(path))


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
