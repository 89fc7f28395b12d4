"""The `trainer.deepspeed` section, and a raw DeepSpeed JSON checked against the trainer settings.

The trainer stays the one source of truth: batch size, gradient accumulation, clipping and precision
are written into DeepSpeed's config from the trainer's settings, and a raw JSON (`config_file` or an
inline `config`) may only add to them. A key both set must agree, and a disagreement names both values.
The file is read once, at resolution, and the resolved config holds its contents in `config`, so a
saved model or a resumed run never needs the file again (and a changed file shows as a changed config).

Only marshmallow and json are imported here: configs resolve without torch or deepspeed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import marshmallow

from framework.config import fields as f

OFFLOAD = [None, "cpu", "nvme"]
DEFAULT_STAGE = 2  # ZeRO-2: optimizer state and gradients partitioned, weights whole (no gather per forward)


class DeepSpeedSchema(f.Schema):
    zero_stage = f.Int(None, min=0, max=3, doc="ZeRO stage 0-3 (default: the raw config's zero_optimization.stage, "
                                               f"else {DEFAULT_STAGE})")
    offload_optimizer = f.Choice(OFFLOAD, None, doc="keep optimizer state in cpu memory or on nvme (stage >= 1); "
                                                    "adam/adamw then run DeepSpeedCPUAdam (compiled on first use)")
    offload_param = f.Choice(OFFLOAD, None, doc="keep weights in cpu memory or on nvme (stage 3)")
    nvme_path = f.Str(None, doc="directory on an nvme drive, needed by offload to nvme")
    fused_optimizer = f.Bool(False, doc="adam/adamw as DeepSpeed's FusedAdam (CUDA only, compiled on first use) "
                                        "instead of torch's")
    config_file = f.Str(None, doc="a DeepSpeed JSON config merged with these settings (read when the config "
                                  "resolves; its contents are kept in `config`)")
    config = f.Mapping(None, doc="a raw DeepSpeed config as a mapping (instead of config_file)")


def owned(trainer: dict) -> list[tuple[tuple[str, ...], str, Any]]:
    """DeepSpeed keys the trainer owns: (path in the DeepSpeed config, the trainer setting, the value it
    puts there). "auto" in a raw config means "take the trainer's"."""
    precision = trainer["precision"]
    return [
        (("train_micro_batch_size_per_gpu",), "batch_size", trainer["batch_size"]),
        (("gradient_accumulation_steps",), "gradient_accumulation_steps", trainer["gradient_accumulation_steps"]),
        (("gradient_clipping",), "max_grad_norm", trainer["max_grad_norm"] or 0.0),
        (("bf16", "enabled"), "precision", precision == "bf16"),
        (("fp16", "enabled"), "precision", precision == "fp16"),
    ]


REFUSED = {
    "optimizer": "the optimizer comes from trainer.optimizer",
    "scheduler": "the learning rate schedule comes from trainer.learning_rate and trainer.learning_rate_scheduler",
    "train_batch_size": None,  # checked against the world size when the processes start (see deepspeed.py)
}


def _get(mapping: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(mapping, dict) or key not in mapping:
            return None
        mapping = mapping[key]
    return mapping


def _read(path: str) -> dict:
    file = Path(path)
    if not file.is_file():
        raise marshmallow.ValidationError({"config_file": [f"file '{path}' does not exist"]})
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise marshmallow.ValidationError({"config_file": [f"'{path}' is not valid JSON: {error}"]}) from None
    if not isinstance(raw, dict):
        raise marshmallow.ValidationError({"config_file": [f"'{path}' must hold a JSON object"]})
    return raw


def resolve_deepspeed(trainer: dict) -> dict | None:
    """The `deepspeed` section resolved against the rest of the trainer; raises a ValidationError keyed
    by the section's own keys (marshmallow adds `trainer.deepspeed.`)."""
    section = trainer.get("deepspeed")
    if trainer["strategy"] != "deepspeed":
        if section is not None:
            raise marshmallow.ValidationError({"deepspeed": [f"applies to trainer.strategy deepspeed; strategy is "
                                                             f"'{trainer['strategy']}'"]})
        return None
    section = dict(section or f.defaults_of(DeepSpeedSchema))
    errors: dict = {}
    from_file = section["config_file"]
    if from_file is not None:
        if section["config"] is not None:
            errors.setdefault("config", []).append("set config or config_file, not both")
        else:
            try:
                section["config"] = _read(from_file)
            except marshmallow.ValidationError as error:
                raise marshmallow.ValidationError({"deepspeed": error.messages}) from None
            section["config_file"] = None  # its contents are in `config` from here on
    raw = section["config"] or {}

    def conflict(path: tuple[str, ...], message: str) -> None:
        """Under config_file when the raw config came from the file, else at the key's own path in `config`."""
        if from_file is not None:
            errors.setdefault("config_file", []).append(f"{'.'.join(path)} in '{from_file}': {message}")
            return
        node = errors.setdefault("config", {})
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1], []).append(message)

    for name, why in REFUSED.items():
        if why is not None and name in raw:
            conflict((name,), f"{why}; remove it")
    for path, setting, ours in owned(trainer):
        given = _get(raw, path)
        if given is not None and given != "auto" and given != ours:
            conflict(path, f"is {given!r} but trainer.{setting} is {trainer[setting]!r}; set it in one place")
    total = raw.get("train_batch_size")
    rows_per_process = trainer["batch_size"] * trainer["gradient_accumulation_steps"]
    if total not in (None, "auto") and (not isinstance(total, int) or total % rows_per_process):
        conflict(("train_batch_size",), f"{total!r} is not a multiple of trainer.batch_size x "
                                        f"gradient_accumulation_steps ({rows_per_process}), so no number of "
                                        "processes gives it")
    stage_given = _get(raw, ("zero_optimization", "stage"))
    if section["zero_stage"] is None:
        section["zero_stage"] = stage_given if stage_given in (0, 1, 2, 3) else DEFAULT_STAGE
        if stage_given is not None and stage_given not in (0, 1, 2, 3):
            conflict(("zero_optimization", "stage"), "must be 0, 1, 2 or 3")
    elif stage_given is not None and stage_given != section["zero_stage"]:
        conflict(("zero_optimization", "stage"), f"is {stage_given!r} but trainer.deepspeed.zero_stage gives "
                                                 f"{section['zero_stage']}; set it in one place")
    _check_offload(section, errors)
    if errors:
        raise marshmallow.ValidationError({"deepspeed": errors})
    return section


def _check_offload(section: dict, errors: dict) -> None:
    stage = section["zero_stage"]
    if section["offload_optimizer"] is not None and stage < 1:
        errors.setdefault("offload_optimizer", []).append(f"needs zero_stage 1, 2 or 3; zero_stage is {stage}")
    if section["offload_param"] is not None and stage != 3:
        errors.setdefault("offload_param", []).append(f"needs zero_stage 3 (weights are partitioned only there); "
                                                      f"zero_stage is {stage}")
    if "nvme" in (section["offload_optimizer"], section["offload_param"]) and not section["nvme_path"]:
        errors.setdefault("nvme_path", []).append("required when offloading to nvme: a directory on the nvme drive")
