"""Training strategies: how the one training loop runs on one process or on several.

The trainer asks its strategy to wrap the model and optimizer, run backward and the optimizer step,
give each process its rows, add up training sums across processes, save and load checkpoints, and
hand back a plain module at the end. Each strategy lives in its own module and is imported only when
a config names it (DeepSpeed's import alone takes seconds).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # configs resolve through strategies.config without importing torch
    import torch

# name -> "module:class"; the first import of a strategy happens when a config asks for it
STRATEGIES = {
    "local": "framework.training.strategies.local:LocalStrategy",
    "ddp": "framework.training.strategies.ddp:DDPStrategy",
    "deepspeed": "framework.training.strategies.deepspeed:DeepSpeedStrategy",
}


def build_strategy(settings: dict, device: "torch.device"):
    module_name, class_name = STRATEGIES[settings["strategy"]].split(":")
    return getattr(importlib.import_module(module_name), class_name)(settings, device)
