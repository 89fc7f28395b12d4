"""Resolving a `model_type: llm` config: every section checked before any model or data is loaded,
every problem reported at once with its key path, every default filled in."""
from __future__ import annotations

from typing import Any

from framework.config.problems import Problems, join
from framework.config.resolve import check_validation_target, resolve_preprocessing, resolve_trainer
from framework.llm import prompts
from framework.llm.adapters import resolve_adapter
from framework.llm.schemas import (GenerationSchema, LLMFeatureSchema, LLMOutputFeatureSchema, LLMTopLevelSchema,
                                   LLMTrainerSchema, PromptSchema, QuantizationSchema)
from framework.version import __version__

TEACHER_FORCED = ("loss", "perplexity", "token_accuracy")
GENERATED = ("sequence_accuracy", "exact_match", "bleu", "rouge")
METRICS = TEACHER_FORCED + GENERATED
EPOCH_GOALS = {"loss": "min", "perplexity": "min", "token_accuracy": "max"}  # what each epoch reports, per metric
ECD_ONLY = ("combiner", "defaults")


def resolve_llm_config(raw: dict, problems: Problems) -> dict:
    top = problems.load(LLMTopLevelSchema, raw, "")
    if top is None:
        top = {name: raw.get(name) for name in LLMTopLevelSchema().fields}
        top.setdefault("trust_remote_code", False)
    for key in ECD_ONLY:
        if raw.get(key) is not None:
            problems.add(key, "applies to model_type ecd only; an llm has no combiner or per-type defaults")
    config: dict[str, Any] = {key: top.get(key) for key in ("model_type", "base_model", "trust_remote_code",
                                                            "model_dtype", "attention", "seed")}
    config["input_features"] = _features(top.get("input_features"), "input_features", LLMFeatureSchema, problems)
    outputs = _features(top.get("output_features"), "output_features", LLMOutputFeatureSchema, problems)
    if isinstance(top.get("output_features"), list) and len(top["output_features"]) > 1:
        problems.add("output_features", f"an llm generates one text output, got {len(top['output_features'])}")
    for i, feature in enumerate(outputs):
        if feature is not None:
            feature["metrics"] = _metrics(feature["metrics"], join(join("output_features", i), "metrics"), problems)
    config["output_features"] = outputs
    config["prompt"] = _prompt(top.get("prompt"), config["input_features"], outputs, problems)
    config["adapter"] = resolve_adapter(top.get("adapter"), problems)
    quantization = top.get("quantization")
    config["quantization"] = None if quantization is None else problems.load(QuantizationSchema, quantization,
                                                                              "quantization")
    config["generation"] = problems.load(GenerationSchema, top.get("generation"), "generation")
    config["trainer"] = resolve_trainer(top.get("trainer"), problems, LLMTrainerSchema)
    config["preprocessing"] = resolve_preprocessing(top.get("preprocessing"), problems)
    _check_cross_references(config, problems)
    if top.get("hyperopt") is not None:  # checked against the rest, so it comes last
        from framework.hyperopt.config import resolve_hyperopt

        config["hyperopt"] = resolve_hyperopt(top["hyperopt"], raw, config, problems)
    problems.raise_if_any()
    config["framework_version"] = __version__
    return config


def _features(raw: Any, key: str, schema: type, problems: Problems) -> list:
    if not isinstance(raw, list):  # missing or not a list: reported by the top-level schema
        return []
    if not raw:
        problems.add(key, "needs at least one text feature")
    features = []
    for i, item in enumerate(raw):
        feature = problems.load(schema, item, join(key, i)) if problems.expect_mapping(join(key, i), item) else None
        if feature is not None:
            feature["column"] = feature["column"] or feature["name"]
        features.append(feature)
    return features


def _metrics(names: list[str] | None, path: str, problems: Problems) -> list[str]:
    if names is None:
        return list(METRICS)
    for i, name in enumerate(names):
        if name not in METRICS:
            problems.unknown_name(join(path, i), "metric", name, METRICS, " for llm outputs")
    return list(dict.fromkeys(["loss", *names]))


def _prompt(raw: Any, inputs: list, outputs: list, problems: Problems) -> dict | None:
    prompt = problems.load(PromptSchema, raw, "prompt")
    if prompt is None or None in inputs:
        return prompt
    names = [feature["name"] for feature in inputs]
    if prompt["template"] is None:
        prompt["template"] = prompts.default_template(names, prompt["task"])
    try:
        slots = prompts.slots(prompt["template"])
    except ValueError as error:
        problems.add("prompt.template", str(error))
        return prompt
    for slot in slots:
        if slot == "task":
            if not prompt["task"]:
                problems.add("prompt.template", "has a {task} slot but prompt.task is not set")
        elif slot not in names:
            problems.unknown_name("prompt.template", "template slot", slot, names + ["task"],
                                  " (slots name input features)")
    unused = [name for name in names if name not in slots]
    if unused:
        problems.add("prompt.template", f"never uses the input features {', '.join(map(repr, unused))}; add "
                                        f"{', '.join('{' + n + '}' for n in unused)} or remove them from input_features")
    for i, example in enumerate(prompt["examples"] or []):
        for feature in [*inputs, *[o for o in outputs if o is not None]]:
            if feature["name"] not in example and feature["column"] not in example:
                problems.add(join(join("prompt.examples", i), feature["name"]), "missing: a few-shot example gives "
                                                                               "every input and the output")
    return prompt


def _check_cross_references(config: dict, problems: Problems) -> None:
    trainer, outputs = config["trainer"], [o for o in config["output_features"] if o is not None]
    if trainer is not None and len(outputs) == 1:
        if trainer["validation_metric"] not in TEACHER_FORCED:
            problems.add("trainer.validation_metric", f"an llm watches one of {', '.join(TEACHER_FORCED)} while "
                                                      f"training (generation each epoch would cost more than the "
                                                      f"epoch), got '{trainer['validation_metric']}'")
        else:
            check_validation_target(trainer, {outputs[0]["name"]: outputs[0]}, problems)
    names = [f["name"] for f in config["input_features"] + config["output_features"] if f is not None]
    for name in {n for n in names if names.count(n) > 1}:
        problems.add("output_features", f"'{name}' names both an input and the output (or two inputs)")
    split = (config["preprocessing"] or {}).get("split")
    if split is not None and split["type"] == "stratify":
        problems.add("preprocessing.split.type", "stratify needs a category output; an llm output is text (use "
                                                 "random or fixed)")
    quantization = config["quantization"]
    if quantization is not None and config["adapter"] is not None and config["adapter"]["type"] == "none":
        problems.add("quantization", "quantized weights cannot be trained directly: add an adapter (4-bit + lora "
                                     "is QLoRA), or drop quantization for a full fine-tune")
