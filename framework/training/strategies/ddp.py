"""torch DistributedDataParallel: a whole model per process, gradients averaged in backward.

Checkpoints keep the local format (weights, optimizer, RNG), written by the main process alone: every
process holds the same weights and optimizer state.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from framework.training import checkpoints, distributed
from framework.training.strategies.local import LocalStrategy
from framework.training.strategies.shards import Shards


class DDPStrategy(Shards, LocalStrategy):
    def __init__(self, settings: dict, device: torch.device):
        LocalStrategy.__init__(self, settings, device)
        Shards.__init__(self)
        self.wrapped: DistributedDataParallel | None = None

    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        # `cuda` without an index is this process's own GPU, chosen by distributed.setup from LOCAL_RANK
        ids = [torch.cuda.current_device() if self.device.index is None else self.device.index] \
            if self.device.type == "cuda" else None
        self.wrapped = DistributedDataParallel(model, device_ids=ids)
        return self.wrapped, optimizer

    def accumulating(self, boundary: bool):
        """Between optimizer steps the gradients only add up locally: one all-reduce per step, not per batch
        (DDP decides in the forward pass whether the backward reduces, so this wraps both)."""
        return contextlib.nullcontext() if boundary else self.wrapped.no_sync()

    def finish(self, model: torch.nn.Module) -> None:
        self.wrapped = None  # the module inside is the model itself, with its trained weights

    def save_checkpoint(self, directory: Path, model, optimizer, state: dict) -> None:
        if self.is_main:
            checkpoints.save_checkpoint(directory, model, optimizer, self.scaler, state)
        distributed.barrier()  # the others read it only once it is complete

    def load_checkpoint(self, directory: Path, model, optimizer) -> dict:
        state = checkpoints.load_checkpoint(directory, model, optimizer, self.scaler)
        if not self.is_main:  # the saved running sums are all processes' together: counted once, on the main one
            state["loss_sum"], state["output_loss_sums"] = 0.0, {}
        return state
