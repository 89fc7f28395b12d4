"""Choosing the device and the autocast precision, with clear errors for what the machine lacks."""
from __future__ import annotations

import contextlib

import torch

from framework.errors import FrameworkError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise FrameworkError(f"trainer.device '{name}' is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FrameworkError(f"trainer.device is '{name}' but no CUDA device is available; use 'auto' or 'cpu'")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise FrameworkError(f"trainer.device is '{name}' but only {torch.cuda.device_count()} CUDA devices exist")
    return device


def check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise FrameworkError(f"trainer.precision fp16 needs a CUDA GPU and this run is on {device.type}; "
                             "use bf16 (supported on CPUs) or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise FrameworkError("trainer.precision bf16 is not supported by this GPU; use fp16 or fp32")


def autocast(precision: str, device: torch.device):
    """Mixed precision for the forward pass; fp32 runs without autocast."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[precision])
