"""One process: the model as it is, torch's optimizer step, gradient clipping and the fp16 loss scaler."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from framework.data.dataset import ArrayDataset
from framework.training import checkpoints


class LocalStrategy:
    rank, world_size, is_main = 0, 1, True

    def __init__(self, settings: dict, device: torch.device):
        self.settings = settings
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if settings["precision"] == "fp16" else None

    # -- wrapping -----------------------------------------------------------------------------
    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        """The callable that runs the forward pass, and the optimizer whose groups take the rate."""
        return model, optimizer

    def finish(self, model: torch.nn.Module) -> None:
        """Leaves `model` a plain module holding the trained weights on every process."""

    # -- one step -----------------------------------------------------------------------------
    def accumulating(self, boundary: bool):
        """Around a batch's forward and backward; `boundary`: this batch ends an optimizer step."""
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if self.settings["max_grad_norm"] is not None:
            if self.scaler is not None:
                self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.settings["max_grad_norm"])
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def zero_grad(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)

    # -- data and sums across processes -------------------------------------------------------
    def epoch_rows(self, train: ArrayDataset, order: np.ndarray) -> tuple[ArrayDataset, np.ndarray | None]:
        """This process's rows of the epoch and the order to read them in."""
        return train, order

    def rows_per_process(self, rows: int) -> int:
        return rows

    def all_sum(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        return tensors

    def all_finite(self, loss: torch.Tensor) -> bool:
        return bool(torch.isfinite(loss).item())  # a host sync point

    def barrier(self) -> None:
        pass

    def full_weights(self, model: torch.nn.Module):
        """A scope in which `model`'s tensors are whole and in their trained precision (for saving)."""
        return contextlib.nullcontext()

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, directory: Path, model, optimizer, state: dict) -> None:
        checkpoints.save_checkpoint(directory, model, optimizer, self.scaler, state)

    def load_checkpoint(self, directory: Path, model, optimizer) -> dict:
        return checkpoints.load_checkpoint(directory, model, optimizer, self.scaler)
