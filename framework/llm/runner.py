"""Model's verbs for `model_type: llm`: train, predict (zero-shot too), evaluate, save and load.

A saved LLM is a directory of config.yaml, training_set_metadata.json, tokenizer/ and either
adapter/ (peft's own format: `PeftModel.from_pretrained(base, dir/adapter)` loads it) or, for a full
fine-tune, merged/ (a transformers model directory); `save(merged=True)` adds merged/ to an adapter.
"""
from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from framework import atomic
from framework.errors import FrameworkError, ModelDirError
from framework.version import __version__

CONFIG, METADATA, TOKENIZER, ADAPTER, MERGED = "config.yaml", "training_set_metadata.json", "tokenizer", "adapter", "merged"


def total_steps(config: dict, train) -> int:
    """The optimizer steps the trainer will take over `train` (AdaLoRA's schedule must match them): each
    process steps over its own share of the rows."""
    from framework.training import distributed
    from framework.training.trainer import planned_steps

    share = -(-len(train) // distributed.world_size())
    return planned_steps(config["trainer"], share)[2]


def build(config: dict, device, steps: int | None, adapter_dir: Path | None = None, use_adapter: bool = True):
    """The LLM module: the base model (quantized when asked), gradient checkpointing, and the adapter
    (fresh, or read from `adapter_dir`)."""
    from framework.llm.adapters import apply_adapter
    from framework.llm.loading import load_base_model, prepare_for_training
    from framework.models.llm import LLM

    base = prepare_for_training(load_base_model(config, device), config)
    adapter = config["adapter"] if use_adapter else {"type": "none"}
    if adapter_dir is not None:
        model = _load_adapter(base, adapter_dir)
    elif adapter["type"] != "none":
        model = apply_adapter(base, adapter, steps)
    else:
        model = base
    return LLM(config, model, adapter).to(device)


def _load_adapter(base, adapter_dir: Path, trainable: bool = True):
    """A saved adapter, trainable unless asked otherwise. peft saves a prompt-learning adapter as its final
    virtual-token embeddings (p-tuning's and prefix projection's reparameterising networks are not kept)
    and refuses `is_trainable` for it, so it loads in inference mode, where those embeddings are used as
    they are, and they are made trainable: further training goes on from exactly what was saved."""
    from peft import PeftConfig, PeftModel

    with warnings.catch_warnings():
        # AdaLoRA saves its learned ranks as rank_pattern keys `<module>.lora_E` and resizes by them itself;
        # peft's generic check of rank_pattern against module names would call every one of them ignored
        warnings.filterwarnings("ignore", message=r"The following rank_pattern keys did not match any targeted "
                                                  r"module and were ignored: \['[^']*\.lora_E'", category=RuntimeWarning)
        if not PeftConfig.from_pretrained(str(adapter_dir)).is_prompt_learning:
            return PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=trainable)
        model = PeftModel.from_pretrained(base, str(adapter_dir))
    model.prompt_encoder.requires_grad_(trainable)
    return model


def _device(config: dict):
    from framework.llm.loading import check_machine
    from framework.training.device import check_precision, resolve_device

    device = resolve_device(config["trainer"]["device"])
    check_precision(config["trainer"]["precision"], device)
    check_machine(config, device)  # before any data is read
    return device


def _tokenizer(model):
    from framework.llm.loading import load_tokenizer

    if getattr(model, "tokenizer", None) is None:
        model.tokenizer = load_tokenizer(model.config)
    return model.tokenizer


def train(model, dataset: Any, validation: Any, test: Any, output_dir, experiment_name: str, resume: bool,
          callbacks=()):
    from framework import runs
    from framework.api import TrainResult
    from framework.llm.data import prepare_llm_training
    from framework.llm.loading import check_causal_lm
    from framework.models.model_dir import dump_config
    from framework.training.seeding import seeded
    from framework.training import distributed
    from framework.training.trainer import Trainer

    config = model.config
    device = _device(config)
    run_dir = None if output_dir is None else distributed.opened_by_main(
        lambda: runs.open_run(output_dir, experiment_name, dump_config(config), resume))
    tokenizer = _tokenizer(model)
    splits, metadata = prepare_llm_training(config, tokenizer, dataset, validation, test, check_causal_lm(config))
    model.metadata = metadata
    with seeded(config["seed"], device):
        if model.module is None:
            model.module = build(config, device, total_steps(config, splits["train"].arrays))
        trainer = Trainer(model.module, config, device, run_dir, callbacks=callbacks)
        statistics = trainer.fit(splits["train"].arrays, splits["validation"].arrays, splits["test"].arrays,
                                 resume=resume)
    metrics = {split: evaluate_split(model, splits[split], device) if len(splits[split]) else {}
               for split in ("validation", "test")}
    if run_dir is not None and distributed.is_main():
        save(model, run_dir / "model")
        atomic.write_json(run_dir / "test_metrics.json", metrics["test"])
    return TrainResult(statistics, metrics["test"], metrics["validation"], run_dir)


def _ready(model):
    """The module for inference: the trained one, or the base model alone for zero/few-shot prediction."""
    from framework.llm.data import max_length
    from framework.llm.loading import check_causal_lm

    device = _device(model.config)
    tokenizer = _tokenizer(model)
    if model.module is None:
        model.module = build(model.config, device, None, use_adapter=False)
        model.untrained = True
    if model.metadata is None:
        model.metadata = {"max_sequence_length": max_length(model.config, tokenizer, check_causal_lm(model.config)),
                          "pad_id": tokenizer.pad_token_id, "eos_id": tokenizer.eos_token_id}
    return device, tokenizer


def _generate(model, split, device, tokenizer, batch_size: int | None = None):
    from framework.llm.generation import generate

    settings = model.config["trainer"]
    return generate(model.module.model, tokenizer, split.prompts, model.config["generation"],
                    batch_size or settings["eval_batch_size"], device, progress_bar=settings["progress_bar"])


def predict(model, dataset: Any, batch_size: int | None = None) -> pd.DataFrame:
    from framework.data.readers import read_dataset
    from framework.llm.data import prepare_llm_inference

    device, tokenizer = _ready(model)
    frame = read_dataset(dataset)
    split = prepare_llm_inference(model.config, model.metadata, tokenizer, frame, with_targets=False)
    texts, _ = _generate(model, split, device, tokenizer, batch_size)
    name = model.config["output_features"][0]["name"]
    return pd.DataFrame({f"{name}_predictions": texts}, index=frame.index)


def evaluate_split(model, split, device, batch_size: int | None = None) -> dict:
    """Teacher-forced loss, perplexity and token accuracy, then the metrics of generated text."""
    from framework.llm.evaluation import generated_metrics

    config, tokenizer = model.config, _tokenizer(model)
    name = config["output_features"][0]["name"]
    wanted = config["output_features"][0]["metrics"]
    size = batch_size or config["trainer"]["eval_batch_size"]
    result = model.module.evaluate_dataset(split.arrays, size, device, config["trainer"]["precision"])
    if any(metric in wanted for metric in ("exact_match", "sequence_accuracy", "bleu", "rouge")):
        texts, ids = _generate(model, split, device, tokenizer, batch_size)
        eos = tokenizer.eos_token_id
        target_ids = [row + [eos] for row in tokenizer(split.responses, add_special_tokens=False)["input_ids"]]
        result[name].update(generated_metrics(texts, ids, split.responses, target_ids, wanted))
    return result


def evaluate(model, dataset: Any, batch_size: int | None = None) -> dict:
    from framework.llm.data import prepare_llm_inference

    device, tokenizer = _ready(model)
    split = prepare_llm_inference(model.config, model.metadata, tokenizer, dataset, with_targets=True)
    return evaluate_split(model, split, device, batch_size)


# -- persistence ------------------------------------------------------------------------------------
def save(model, directory: str | os.PathLike, merged: bool = False) -> None:
    from framework.models.model_dir import dump_config

    module, tokenizer = model.module, _tokenizer(model)
    adapter = model.config["adapter"]["type"]
    with atomic.atomic_dir(Path(directory)) as tmp:
        (tmp / CONFIG).write_text(dump_config(model.config))
        (tmp / METADATA).write_text(json.dumps({"framework_version": __version__, "llm": model.metadata}, indent=1))
        tokenizer.save_pretrained(tmp / TOKENIZER)
        if adapter == "none":
            module.model.save_pretrained(tmp / MERGED, safe_serialization=True)
        else:
            module.model.save_pretrained(tmp / ADAPTER, safe_serialization=True)
            if merged:
                _save_merged(model.config, tmp / ADAPTER, tmp / MERGED)


def _save_merged(config: dict, adapter_dir: Path, target: Path) -> None:
    """Base weights + adapter folded into one transformers model, from an unquantized copy of the base
    (merging into 4- or 8-bit weights would round the adapter away)."""
    import torch

    from framework.llm.adapters import PROMPT_LEARNING
    from framework.llm.loading import load_base_model

    if config["adapter"]["type"] in PROMPT_LEARNING:
        raise FrameworkError(f"a {config['adapter']['type']} adapter adds virtual tokens rather than weight deltas, so "
                             "it cannot be merged into the base model; save it without merged=True")
    plain = {**config, "quantization": None}
    base = load_base_model(plain, torch.device("cpu"))
    merged = _load_adapter(base, adapter_dir, trainable=False).merge_and_unload()
    merged.save_pretrained(target, safe_serialization=True)


def load(cls, directory: Path):
    import yaml

    from framework.config import load_config
    from framework.llm.loading import load_tokenizer

    directory = Path(directory)
    atomic.recover_dir(directory)
    metadata = json.loads((directory / METADATA).read_text())
    config = load_config(yaml.safe_load((directory / CONFIG).read_text()))
    device = _device(config)
    tokenizer = load_tokenizer({**config, "base_model": str(directory / TOKENIZER), "trust_remote_code": False})
    if (directory / ADAPTER).is_dir():
        module = build(config, device, None, adapter_dir=directory / ADAPTER)
    elif (directory / MERGED).is_dir():
        module = build({**copy.deepcopy(config), "base_model": str(directory / MERGED)}, device, None)
    else:
        raise ModelDirError(f"'{directory}' holds no adapter/ or merged/ model")
    model = cls.__new__(cls)
    model.config, model.metadata, model.module, model.tokenizer = config, metadata["llm"], module, tokenizer
    return model
