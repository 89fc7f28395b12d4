"""Checkpoints hold everything needed to resume: weights, optimizer, RNG and trainer state.

Each is a directory replaced atomically, so a kill at any instant leaves the previous complete
checkpoint. Weights are safetensors; the optimizer and RNG states are tensors and numbers saved by
torch and read back with weights_only=True (no arbitrary objects are unpickled).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from framework import atomic
from framework.errors import FrameworkError
from framework.models.weights import load_weights, save_weights


def save_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler | None, state: dict) -> None:
    with atomic.atomic_dir(directory) as tmp:
        save_weights(model, tmp / "model.safetensors")
        torch.save({
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }, tmp / "training_state.pt")
        (tmp / "trainer_state.json").write_text(json.dumps(state))


def has_checkpoint(directory: Path) -> bool:
    atomic.recover_dir(directory)
    return (directory / "trainer_state.json").is_file()


def load_checkpoint(directory: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler | None) -> dict:
    load_weights(model, directory / "model.safetensors")
    try:  # weights_only: tensors and plain containers only; any other object in the file is refused
        saved = torch.load(directory / "training_state.pt", weights_only=True, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - torch raises several types for refused or damaged files
        raise FrameworkError(f"checkpoint '{directory}' cannot be resumed from: training_state.pt is damaged or holds "
                             f"objects other than tensors ({type(error).__name__})") from None
    optimizer.load_state_dict(saved["optimizer"])
    if scaler is not None and saved["scaler"] is not None:
        scaler.load_state_dict(saved["scaler"])
    torch.set_rng_state(saved["cpu_rng"])
    if saved["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return json.loads((directory / "trainer_state.json").read_text())
