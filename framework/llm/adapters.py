"""Adapters through peft: the config section is checked by building peft's own config object, so every
peft setting is accepted and every peft complaint reaches the user with its key path.

Settings are peft's names (r, lora_alpha, lora_dropout, target_modules, num_virtual_tokens ...), typed
as peft's config classes declare them. The LoRA family defaults to `target_modules: all-linear` (peft
finds every linear layer of attention and MLP blocks, except the output layer, on any architecture), so
no table of module names per model. IA3 uses peft's own per-architecture defaults where peft has them
and otherwise the same structural rule: every linear layer, the feedforward ones being those that read
a width larger than the hidden size and write the hidden size (the MLP's down projection).

What only the loaded model can tell (module names that do not exist, an AdaLoRA schedule longer than
the run) is checked by `apply_adapter` and `peft_config` when the model is built, with the same key paths.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import re
import types
import typing
from typing import Any

from framework.config.problems import Problems, did_you_mean, join
from framework.errors import ConfigError, Problem

LORA_DEFAULTS = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": "all-linear"}
# adapter type -> (peft config class, settings it implies, defaults shown in the resolved config)
ADAPTERS: dict[str, tuple[str, dict, dict]] = {
    "lora": ("LoraConfig", {}, LORA_DEFAULTS),
    "dora": ("LoraConfig", {"use_dora": True}, LORA_DEFAULTS),
    "rslora": ("LoraConfig", {"use_rslora": True}, LORA_DEFAULTS),
    "lora+": ("LoraConfig", {}, {**LORA_DEFAULTS, "loraplus_lr_ratio": 16.0, "loraplus_lr_embedding": 1e-6}),
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
POSITIVE = {"r", "num_virtual_tokens", "init_r", "target_r", "encoder_hidden_size", "deltaT"}
PROMPT_LEARNING = {"prompt_tuning", "prefix_tuning", "p_tuning"}
TARGET_LISTS = ("target_modules", "feedforward_modules")
SHOWN_LAYERS = 12  # linear layer names listed when target_modules names none


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
    if not isinstance(name, str) or name not in adapter_names():
        problems.unknown_name(join(path, "type"), "adapter", name, adapter_names())
        return None
    given = {k: v for k, v in raw.items() if k != "type"}
    if name == "none":
        for key in given:
            problems.add(join(path, key), "adapter 'none' (full fine-tuning) takes no settings")
        return {"type": "none"}
    settings = {**ADAPTERS[name][2], **given}
    if _check_settings(name, settings, given, path, problems):
        try:
            _build_config(name, settings, total_steps=None, base_model=None)
        except (TypeError, ValueError) as error:
            message = str(error).splitlines()[0]
            key = _key_in(message, given) or _key_in(message, settings)
            problems.add(join(path, key) if key else path, f"peft refuses the {name} settings: {message}")
    return {"type": name, **settings}


def _check_settings(name: str, settings: dict, given: dict, path: str, problems: Problems) -> bool:
    hints = _peft_fields(ADAPTERS[name][0])
    valid = set(hints) - RESERVED
    if name == "lora+":
        valid |= OWN_SETTINGS
    count = len(problems.items)
    for key, value in settings.items():
        where = join(path, key)
        if key not in valid:
            reserved = " (the framework sets it)" if key in RESERVED else ""
            problems.add(where, f"unknown key for adapter '{name}'{reserved}; {did_you_mean(key, valid)}")
        elif key in ADAPTERS[name][1] and value != ADAPTERS[name][1][key]:
            problems.add(where, f"adapter '{name}' sets {key}: {ADAPTERS[name][1][key]}; use another adapter "
                                f"type for {key}: {value!r}")
        elif key in POSITIVE and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            problems.add(where, f"must be an integer >= 1 (got {value!r})")
        elif key in OWN_SETTINGS:
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0):
                problems.add(where, f"must be a number > 0 (got {value!r})")
        elif (expected := _type_mismatch(value, hints[key])) is not None:
            problems.add(where, f"must be {expected} (got {value!r})")
        elif key.endswith("dropout") and not 0 <= value <= 1:
            problems.add(where, f"is a probability: must be between 0 and 1 (got {value!r})")
    if name == "adalora":
        if "r" in given:
            problems.add(join(path, "r"), "AdaLoRA does not use r: set init_r (each layer's starting rank) and "
                                          "target_r (the average rank it prunes down to)")
        init_r, target_r = settings.get("init_r"), settings.get("target_r")
        if isinstance(init_r, int) and isinstance(target_r, int) and target_r > init_r:
            problems.add(join(path, "target_r"), f"must not exceed init_r ({init_r}): AdaLoRA prunes ranks from "
                                                 f"init_r down to target_r (got {target_r})")
    return len(problems.items) == count


@functools.cache
def _peft_fields(class_name: str) -> dict[str, Any]:
    """peft's config fields with their declared types."""
    import peft

    cls = getattr(peft, class_name)
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def _type_mismatch(value: Any, hint: Any) -> str | None:
    """None when `value` fits peft's declared type, else a description of that type. Types this cannot
    judge (peft's own config objects) are left to peft."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if any(isinstance(arm, type) and issubclass(arm, enum.Enum) for arm in args):
            args = tuple(arm for arm in args if arm is not str)  # Union[SomeEnum, str]: the str is a member's name
        arms = [_type_mismatch(value, arm) for arm in args]
        if any(arm is None for arm in arms):
            return None
        # typing caches equal unions, so the order of the arms depends on import order: sort them
        return " or ".join(sorted(dict.fromkeys(arms), key=lambda arm: (arm == "null", arm)))
    if hint is type(None):
        return None if value is None else "null"
    if origin is typing.Literal:
        if any(isinstance(option, str) and "[" in option for option in args):  # a pattern such as pissa_niter_[n]
            return None if isinstance(value, (str, bool)) else "one of " + ", ".join(map(repr, args))
        fits = any(value == option and type(value) is type(option) for option in args)
        return None if fits else "one of " + ", ".join(map(repr, args))
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if hint is dict or origin is dict:
        return None if isinstance(value, dict) else "a mapping"
    if origin in (list, set, tuple):
        item = args[0] if args else Any
        noun = {int: "integers", str: "strings"}.get(item, "values")
        if not isinstance(value, (list, tuple)):
            return f"a list of {noun}"
        if origin is tuple and Ellipsis not in args:
            fits = len(args) == len(value) and all(_type_mismatch(v, a) is None for v, a in zip(value, args))
            return None if fits else f"a list of {len(args)} values"
        return None if all(_type_mismatch(v, item) is None for v in value) else f"a list of {noun}"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        names = [member.value for member in hint]
        return None if value in names else "one of " + ", ".join(map(repr, names))
    return None


def _key_in(message: str, keys) -> str | None:
    """The setting a peft message is about: a key quoted in it, else one named as a whole word."""
    ordered = sorted(keys, key=len, reverse=True)
    for pattern in (r"[`'\"]{}[`'\"]", r"(?<![\w.]){}(?![\w])"):
        for key in ordered:
            if re.search(pattern.format(re.escape(key)), message):
                return key
    return None


def peft_config(adapter: dict, total_steps: int | None, base_model: str | None = None,
                task_type: str = "CAUSAL_LM"):
    """peft's config object for a resolved adapter section (None for full fine-tuning). `total_steps` is the
    run's optimizer steps (AdaLoRA's schedule); `base_model` names the tokenizer for prompt_tuning_init TEXT;
    `task_type` is FEATURE_EXTRACTION for an encoder."""
    if adapter["type"] == "none":
        return None
    settings = {k: v for k, v in adapter.items() if k != "type"}
    try:
        return _build_config(adapter["type"], settings, total_steps, base_model, checking=False, task_type=task_type)
    except (TypeError, ValueError) as error:
        message = str(error).splitlines()[0]
        key = _key_in(message, settings)
        if adapter["type"] == "adalora" and "budgeting phase" in message:
            key, message = "tinit", (f"tinit ({settings.get('tinit', 0)}) + tfinal ({settings.get('tfinal', 0)}) "
                                     f"leave no budgeting steps in this run of {total_steps} optimizer steps: lower "
                                     "them or train longer")
        raise ConfigError([Problem(join("adapter", key) if key else "adapter",
                                   f"peft refuses the {adapter['type']} settings: {message}")]) from None


def _build_config(name: str, settings: dict, total_steps: int | None, base_model: str | None,
                  checking: bool = True, task_type: str = "CAUSAL_LM"):
    import peft

    class_name, implied, _ = ADAPTERS[name]
    kwargs = {**implied, **{k: v for k, v in settings.items() if k not in OWN_SETTINGS}}
    if name == "adalora":
        if checking and total_steps is None:  # the run's length is known when the model is built
            total_steps = kwargs.get("tinit", 0) + kwargs.get("tfinal", 0) + 1
        kwargs["total_step"] = max(1, total_steps or 1)
    if name == "prompt_tuning" and str(kwargs.get("prompt_tuning_init", "")).upper() == "TEXT":
        kwargs.setdefault("tokenizer_name_or_path", base_model or "the base model")
    for key in TARGET_LISTS:  # peft keeps a list of names as given and compares them as sets
        if isinstance(kwargs.get(key), tuple):
            kwargs[key] = list(kwargs[key])
    return getattr(peft, class_name)(task_type=task_type, **kwargs)


# -- applying an adapter to a loaded model ---------------------------------------------------------------
def apply_adapter(base, adapter: dict, total_steps: int | None, task_type: str = "CAUSAL_LM"):
    """The peft model of `base` with a fresh adapter (the base itself for full fine-tuning). Module names
    that match nothing in this model, and anything else peft refuses about it, are config errors naming
    the key and the layers that do exist."""
    if adapter["type"] == "none":
        return base
    from peft import get_peft_model

    settings = dict(adapter)
    if adapter["type"] == "ia3":
        settings.update(_ia3_defaults(base, settings))
    _check_targets(base, settings)
    config = peft_config(settings, total_steps, base_model=getattr(base, "name_or_path", None), task_type=task_type)
    try:
        return get_peft_model(base, config)
    except (ValueError, NotImplementedError) as error:
        message = str(error).splitlines()[0]
        key = _key_in(message, set(adapter) - {"type"})
        if key is None and "target module" in message.lower():
            key = "target_modules"
        raise ConfigError([Problem(join("adapter", key) if key else "adapter",
                                   f"peft cannot apply the {adapter['type']} adapter to '{_model_name(base)}': "
                                   f"{message}; {_layers_hint(base)}")]) from None


def _model_name(model) -> str:
    return getattr(model, "name_or_path", None) or type(model).__name__


def linear_layers(model) -> list[tuple[str, Any]]:
    """The model's linear layers (nn.Linear and its quantized subclasses, GPT-2's Conv1D), without the
    output layer: what an adapter of the LoRA family or IA3 can target."""
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, (nn.Linear, Conv1D)) and module is not output]


def _features(module) -> tuple[int, int]:
    if hasattr(module, "in_features"):
        return module.in_features, module.out_features
    return module.nx, module.nf  # Conv1D


def _suffixes(names) -> list[str]:
    return list(dict.fromkeys(name.rsplit(".", 1)[-1] for name in names))


def _layers_hint(model) -> str:
    names = _suffixes(name for name, _ in linear_layers(model))
    shown = ", ".join(names[:SHOWN_LAYERS]) + (", ..." if len(names) > SHOWN_LAYERS else "")
    return (f"its linear layers are named {shown} (give the last part of a name, or all-linear)" if names
            else "it has no linear layers")


def _ia3_defaults(model, settings: dict) -> dict:
    """IA3's target and feedforward modules for an architecture peft has no defaults for: every linear
    layer, the feedforward ones (scaled on their input) being those that read a width larger than the
    hidden size and write the hidden size."""
    from peft.utils import (TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as PEFT_FEEDFORWARD,
                            TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as PEFT_TARGETS)

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    chosen = {}
    layers = linear_layers(model)
    if settings.get("target_modules") is None and model_type not in PEFT_TARGETS:
        chosen["target_modules"] = _suffixes(name for name, _ in layers)
    if settings.get("feedforward_modules") is None and (model_type not in PEFT_FEEDFORWARD or chosen):
        hidden = model.get_input_embeddings().embedding_dim
        by_name: dict[str, list[bool]] = {}
        for name, module in layers:
            width_in, width_out = _features(module)
            by_name.setdefault(name.rsplit(".", 1)[-1], []).append(width_in > hidden and width_out == hidden)
        feedforward = [name for name, shapes in by_name.items() if all(shapes)]
        targets = chosen.get("target_modules", settings.get("target_modules"))
        if targets is None:
            targets = PEFT_TARGETS[model_type]
        if not isinstance(targets, str):  # a list must hold its feedforward modules; a pattern is peft's to match
            feedforward = [name for name in targets if name in feedforward]
        chosen["feedforward_modules"] = feedforward
    return chosen


def _check_targets(model, settings: dict) -> None:
    """Every name in a target_modules list must match a module of this model (peft itself only
    refuses a list none of whose names match, so a misspelt one would be dropped silently)."""
    targets = settings.get("target_modules")
    if not isinstance(targets, (list, tuple)):
        return
    names = [name for name, _ in model.named_modules()]
    missing = [key for key in targets if not any(name == key or name.endswith("." + key) for name in names)]
    if missing:
        listed = ", ".join(map(repr, missing))
        raise ConfigError([Problem("adapter.target_modules",
                                   f"no module of '{_model_name(model)}' is named {listed}; {_layers_hint(model)}")])
