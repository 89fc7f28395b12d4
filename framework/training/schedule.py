"""The learning rate as a pure function of the step (plus one plateau factor kept in checkpoints)."""
from __future__ import annotations

import math

from framework.config import fields as f


class SchedulerSchema(f.Schema):
    warmup_steps = f.Int(None, min=0, doc="steps of linear warmup from 0 (overrides warmup_fraction)")
    warmup_fraction = f.Float(0.0, min=0.0, max=1.0, doc="fraction of all steps spent in linear warmup")
    decay = f.Choice([None, "linear", "cosine", "exponential"], None, doc="decay after warmup")
    decay_rate = f.Float(0.96, min=0.0, max=1.0, min_inclusive=False, doc="exponential decay: factor per decay_steps")
    decay_steps = f.Int(1000, min=1, doc="exponential decay: steps per decay_rate factor")
    min_learning_rate = f.Float(0.0, min=0.0, doc="floor of the decayed learning rate")
    reduce_on_plateau = f.Int(0, min=0, doc="evaluations without improvement before the rate is reduced (0: off)")
    reduce_factor = f.Float(0.5, min=0.0, max=1.0, min_inclusive=False, doc="factor applied on a plateau")


def warmup_length(settings: dict, total_steps: int) -> int:
    if settings["warmup_steps"] is not None:
        return settings["warmup_steps"]
    return int(settings["warmup_fraction"] * total_steps)


def learning_rate_at(step: int, base: float, settings: dict, total_steps: int, plateau_factor: float = 1.0) -> float:
    """The rate for optimizer step `step` (0-based) of `total_steps`."""
    warmup = warmup_length(settings, total_steps)
    if step < warmup:
        return base * plateau_factor * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    decay = settings["decay"]
    if decay == "linear":
        factor = max(0.0, 1.0 - progress)
    elif decay == "cosine":
        factor = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    elif decay == "exponential":
        factor = settings["decay_rate"] ** ((step - warmup) / settings["decay_steps"])
    else:
        factor = 1.0
    return max(settings["min_learning_rate"], base * factor * plateau_factor)
