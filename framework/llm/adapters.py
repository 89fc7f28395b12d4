"""Adapters through peft: the config section is checked by building peft's own config object, so every
peft setting is accepted and every peft complaint reaches the user with its key path.

Settings are peft's names (r, lora_alpha, lora_dropout, target_modules, num_virtual_tokens ...). The
LoRA family defaults to `target_modules: all-linear` (peft finds every linear layer of attention and
MLP blocks, except the output layer, on any architecture), so no table of module names per model.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from framework.config.problems import Problems, did_you_mean, join

# adapter type -> (peft config class, settings it implies, defaults shown in the resolved config)
ADAPTERS: dict[str, tuple[str, dict, dict]] = {
    "lora": ("LoraConfig", {}, {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": "all-linear"}),
    "dora": ("LoraConfig", {"use_dora": True}, {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05,
                                                "target_modules": "all-linear"}),
    "rslora": ("LoraConfig", {"use_rslora": True}, {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05,
                                                    "target_modules": "all-linear"}),
    "lora+": ("LoraConfig", {}, {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": "all-linear",
                                 "loraplus_lr_ratio": 16.0, "loraplus_lr_embedding": 1e-6}),
    "adalora": ("AdaLoraConfig", {}, {"init_r": 12, "target_r": 8, "lora_alpha": 16, "target_modules": "all-linear"}),
    "loha": ("LoHaConfig", {}, {"r": 8, "alpha": 16, "target_modules": "all-linear"}),
    "lokr": ("LoKrConfig", {}, {"r": 8, "alpha": 16, "target_modules": "all-linear"}),
    "ia3": ("IA3Config", {}, {}),
    "prompt_tuning": ("PromptTuningConfig", {}, {"num_virtual_tokens": 8}),
    "prefix_tuning": ("PrefixTuningConfig", {}, {"num_virtual_tokens": 8}),
    "p_tuning": ("PromptEncoderConfig", {}, {"num_virtual_tokens": 8, "encoder_hidden_size": 128}),
}
# settings of ours, not peft's: LoRA+ scales the learning rate of the B matrices (and embeddings)
OWN_SETTINGS = {"loraplus_lr_ratio", "loraplus_lr_embedding"}
# peft fields the framework sets itself
RESERVED = {"task_type", "peft_type", "auto_mapping", "peft_version", "base_model_name_or_path", "revision",
            "inference_mode", "total_step"}
POSITIVE = {"r", "num_virtual_tokens", "init_r", "target_r", "encoder_hidden_size"}
PROMPT_LEARNING = {"prompt_tuning", "prefix_tuning", "p_tuning"}


def adapter_names() -> list[str]:
    return [*ADAPTERS, "none"]


def resolve_adapter(raw: Any, problems: Problems) -> dict | None:
    path = "adapter"
    if raw is None:
        return {"type": "none"}
    if isinstance(raw, str):
        raw = {"type": raw}
    if not problems.expect_mapping(path, raw):
        return None
    name = raw.get("type", "lora")
    if name not in adapter_names():
        problems.unknown_name(join(path, "type"), "adapter", name, adapter_names())
        return None
    given = {k: v for k, v in raw.items() if k != "type"}
    if name == "none":
        for key in given:
            problems.add(join(path, key), "adapter 'none' (full fine-tuning) takes no settings")
        return {"type": "none"}
    settings = {**ADAPTERS[name][2], **given}
    if _check_settings(name, settings, path, problems):
        try:
            peft_config(settings | {"type": name}, total_steps=1)
        except (TypeError, ValueError) as error:
            message = str(error).splitlines()[0]
            key = next((k for k in given if k in message), None)
            problems.add(join(path, key) if key else path, f"peft refuses the {name} settings: {message}")
    return {"type": name, **settings}


def _check_settings(name: str, settings: dict, path: str, problems: Problems) -> bool:
    valid = set(_peft_fields(name)) - RESERVED
    if name == "lora+":
        valid |= OWN_SETTINGS
    fine = True
    for key, value in settings.items():
        if key not in valid:
            reserved = " (the framework sets it)" if key in RESERVED else ""
            problems.add(join(path, key), f"unknown key for adapter '{name}'{reserved}; {did_you_mean(key, valid)}")
            fine = False
        elif key in POSITIVE and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            problems.add(join(path, key), f"must be an integer >= 1 (got {value!r})")
            fine = False
        elif key in OWN_SETTINGS and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
            problems.add(join(path, key), f"must be a number > 0 (got {value!r})")
            fine = False
    return fine


def _peft_fields(name: str) -> list[str]:
    import peft

    return [f.name for f in dataclasses.fields(getattr(peft, ADAPTERS[name][0]))]


def peft_config(adapter: dict, total_steps: int | None):
    """peft's config object for a resolved adapter section (None for full fine-tuning)."""
    if adapter["type"] == "none":
        return None
    import peft

    class_name, implied, _ = ADAPTERS[adapter["type"]]
    kwargs = {**implied, **{k: v for k, v in adapter.items() if k != "type" and k not in OWN_SETTINGS}}
    if adapter["type"] == "adalora":
        kwargs["total_step"] = max(1, total_steps or 1)
    return getattr(peft, class_name)(task_type="CAUSAL_LM", **kwargs)
