"""Config resolution: validate everything before any data is read, fill every default.

The walk dispatches each polymorphic section (a feature's type, an encoder's type ...) to the
schema its registry names, collects every problem with its key path, and raises one ConfigError.
The result is a plain dict in which every setting is explicit: what `framework check` prints and
what is saved beside a model.
"""
from __future__ import annotations

import copy
from typing import Any

from framework.config.problems import Problems, did_you_mean, join
from framework.config.sections import (DEFAULTS_SECTIONS, ROLE_DEFAULTS, InputFeatureSchema, OutputFeatureSchema,
                                       PreprocessingSchema, TopLevelSchema)
from framework.data.split import SplitSchema
from framework.registry import Registry, combiners, decoders, encoders, feature_types, losses, metrics, optimizers
from framework.training.schedule import SchedulerSchema
from framework.training.settings import TrainerSchema
from framework.version import __version__


def resolve_config(raw: Any) -> dict:
    problems = Problems()
    if not isinstance(raw, dict):
        problems.add("", f"a config must be a mapping of sections, got {type(raw).__name__}")
        problems.raise_if_any()
    if raw.get("model_type") == "llm":
        from framework.llm.config import resolve_llm_config

        return resolve_llm_config(raw, problems)
    top = problems.load(TopLevelSchema, raw, "")
    if top is None:  # a bad top-level value is reported; the sections are still checked, so all problems show
        top = {name: raw.get(name) for name in TopLevelSchema().fields}
    defaults = _resolve_defaults(top["defaults"], problems)
    config = {"model_type": top["model_type"], "seed": top["seed"]}
    for role in ("input", "output"):
        key = f"{role}_features"
        if not isinstance(top[key], list):  # missing or not a list: reported by the top-level schema
            continue
        if not top[key]:
            problems.add(key, f"needs at least one {role} feature")
        config[key] = [_resolve_feature(raw_feature, join(key, i), role, defaults, problems)
                       for i, raw_feature in enumerate(top[key])]
    config["combiner"] = _resolve_component(top["combiner"], "combiner", combiners, None, "concat", problems)
    config["preprocessing"] = resolve_preprocessing(top["preprocessing"], problems)
    config["trainer"] = resolve_trainer(top["trainer"], problems)
    config["defaults"] = top["defaults"] or {}
    _check_cross_references(config, problems)
    if top.get("hyperopt") is not None:  # checked against the rest, so it comes last
        from framework.hyperopt.config import resolve_hyperopt

        config["hyperopt"] = resolve_hyperopt(top["hyperopt"], raw, config, problems)
    problems.raise_if_any()
    config["framework_version"] = __version__
    return config


def _resolve_defaults(section: Any, problems: Problems) -> dict:
    if section is None or not problems.expect_mapping("defaults", section):
        return {}
    resolved = {}
    before = len(problems.items)
    for type_name, sections in section.items():
        path = join("defaults", type_name)
        if type_name not in feature_types:
            problems.unknown_name(path, "feature type", type_name, feature_types.names())
            continue
        if not problems.expect_mapping(path, sections):
            continue
        for key in sections:
            if key not in DEFAULTS_SECTIONS:
                problems.add(join(path, key), f"unknown key; {did_you_mean(key, DEFAULTS_SECTIONS)}")
        resolved[type_name] = sections
        # validated on their own so a problem is reported even when no feature has this type: the
        # preprocessing and encoder as an input's, the decoder and loss as an output's
        inputs = {k: v for k, v in sections.items() if k in ROLE_DEFAULTS["input"]}
        outputs = {k: v for k, v in sections.items() if k in ROLE_DEFAULTS["output"] and k != "preprocessing"}
        _resolve_feature({"name": "_", "type": type_name, **inputs}, path, "input", {}, problems, check_extras=False)
        if outputs:
            _resolve_feature({"name": "_", "type": type_name, **outputs}, path, "output", {}, problems,
                             check_extras=False)
    return {} if len(problems.items) > before else resolved


def _merge_defaults(raw: dict, type_defaults: dict, role: str) -> dict:
    merged = dict(raw)
    for key, section in type_defaults.items():
        if key not in ROLE_DEFAULTS[role]:
            continue
        own = raw.get(key)
        if own is None:
            merged[key] = copy.deepcopy(section)
        elif isinstance(own, dict) and isinstance(section, dict):
            same_component = own.get("type", section.get("type")) == section.get("type")
            merged[key] = {**section, **own} if key == "preprocessing" or same_component else own
    return merged


def _resolve_feature(raw: Any, path: str, role: str, defaults: dict, problems: Problems,
                     check_extras: bool = True) -> dict | None:
    if not problems.expect_mapping(path, raw):
        return None
    type_name = raw.get("type")
    if isinstance(type_name, str) and type_name in defaults:
        raw = _merge_defaults(raw, defaults[type_name], role)
    schema = InputFeatureSchema if role == "input" else OutputFeatureSchema
    if not check_extras:
        raw = {k: v for k, v in raw.items() if k in schema().fields}
    feature = problems.load(schema, raw, path)
    if feature is None:
        return None
    if feature["type"] not in feature_types:
        problems.unknown_name(join(path, "type"), "feature type", feature["type"], feature_types.names())
        return None
    kind = feature_types.get(feature["type"]).cls
    feature["column"] = feature["column"] or feature["name"]
    preprocessing = {} if feature["preprocessing"] is None else feature["preprocessing"]
    if role == "output" and isinstance(preprocessing, dict):  # an output without its own section too
        preprocessing = {"missing_value_strategy": "drop_row", **preprocessing}
    feature["preprocessing"] = problems.load(kind.preprocessing_schema, preprocessing, join(path, "preprocessing"))
    if role == "input":
        feature["encoder"] = _resolve_component(feature["encoder"], join(path, "encoder"), encoders,
                                                feature["type"], kind.default_encoder, problems)
        _apply_encoder_preprocessing(feature, preprocessing, path, problems)
        return feature
    if kind.default_decoder is None:
        problems.add(join(path, "type"), f"'{feature['type']}' cannot be an output feature")
        return None
    feature["decoder"] = _resolve_component(feature["decoder"], join(path, "decoder"), decoders,
                                            feature["type"], kind.default_decoder, problems)
    feature["loss"] = _resolve_component(feature["loss"], join(path, "loss"), losses,
                                         feature["type"], kind.default_loss, problems)
    feature["metrics"] = _resolve_metrics(feature, kind, path, problems)
    if check_extras:
        _check_type_specific(raw, feature, path, problems)
    return _drop_inapplicable(feature)


def _apply_encoder_preprocessing(feature: dict, given: Any, path: str, problems: Problems) -> None:
    """An encoder that needs its own preprocessing (the llm encoder: its model's tokenizer) sets it;
    a different value the user gave is a contradiction, reported."""
    encoder, preprocessing = feature["encoder"], feature["preprocessing"]
    if encoder is None or preprocessing is None:
        return
    needs = getattr(encoders.get(encoder["type"], feature["type"]).cls, "preprocessing_for", None)
    for key, value in (needs(encoder) if needs else {}).items():
        own = given.get(key) if isinstance(given, dict) else None
        if own is not None and own != value and not (key == "tokenizer" and own == "pretrained"):
            problems.add(join(join(path, "preprocessing"), key), f"the {encoder['type']} encoder sets it to "
                                                                 f"{value!r} (its model's own); got {own!r}")
        preprocessing[key] = value


def _resolve_metrics(feature: dict, kind: Any, path: str, problems: Problems) -> list[str]:
    if feature["metrics"] is None:
        return list(kind.default_metrics)
    valid = metrics.names(feature["type"])
    for i, name in enumerate(feature["metrics"]):
        if name not in valid:
            problems.unknown_name(join(join(path, "metrics"), i), "metric", name, valid, f" for {feature['type']} outputs")
    return list(dict.fromkeys(["loss", *feature["metrics"]]))


TYPE_SPECIFIC = {"threshold": "binary", "top_k": "category"}


def _drop_inapplicable(feature: dict) -> dict:
    return {k: v for k, v in feature.items() if TYPE_SPECIFIC.get(k, feature["type"]) == feature["type"]}


def _check_type_specific(raw: dict, feature: dict, path: str, problems: Problems) -> None:
    for key, type_name in TYPE_SPECIFIC.items():
        if key in raw and feature["type"] != type_name:
            problems.add(join(path, key), f"applies to {type_name} outputs only, this output is {feature['type']}")


def _resolve_component(raw: Any, path: str, registry: Registry, data_type: str | None, default: str,
                       problems: Problems) -> dict | None:
    """Resolves a {type: name, ...settings} section against the registry's schema for that name."""
    if isinstance(raw, str):
        raw = {"type": raw}
    raw = {} if raw is None else raw
    if not problems.expect_mapping(path, raw):
        return None
    name = raw.get("type", default)
    valid = registry.names(data_type)
    if name not in valid:
        extra = ""
        if data_type is not None and name in registry:
            serves = ", ".join(registry.types_of(name))
            extra = f" for {data_type} features (it serves {serves})"
        problems.unknown_name(join(path, "type"), registry.kind, name, valid, extra)
        return None
    entry = registry.get(name, data_type)
    settings = problems.load(entry.schema, {k: v for k, v in raw.items() if k != "type"}, path)
    return None if settings is None else {"type": name, **settings}


def resolve_preprocessing(raw: Any, problems: Problems) -> dict | None:
    section = problems.load(PreprocessingSchema, raw, "preprocessing")
    if section is None:
        return None
    split = problems.load(SplitSchema, section["split"], "preprocessing.split")
    if split is not None:
        probabilities = split["probabilities"]
        if len(probabilities) != 3 or abs(sum(probabilities) - 1.0) > 1e-6 or min(probabilities) < 0:
            problems.add("preprocessing.split.probabilities",
                         f"must be three non-negative fractions (train, validation, test) summing to 1, got {probabilities}")
        if split["type"] in ("fixed", "stratify") and not split["column"]:
            problems.add("preprocessing.split.column", f"required for split type '{split['type']}'")
    section["split"] = split
    return section


def resolve_trainer(raw: Any, problems: Problems, schema: type = TrainerSchema) -> dict | None:
    trainer = problems.load(schema, raw, "trainer")
    sections = raw if isinstance(raw, dict) else {}
    # the subsections are checked even when the rest failed, so all their problems show at once
    optimizer = _resolve_component(sections.get("optimizer"), "trainer.optimizer", optimizers, None, "adam", problems)
    scheduler = problems.load(SchedulerSchema, sections.get("learning_rate_scheduler"), "trainer.learning_rate_scheduler")
    if trainer is None:
        return None
    trainer["optimizer"], trainer["learning_rate_scheduler"] = optimizer, scheduler
    effective = trainer["effective_batch_size"]
    if effective is not None:
        steps, remainder = divmod(effective, trainer["batch_size"])
        explicit = raw.get("gradient_accumulation_steps") if isinstance(raw, dict) else None
        if remainder or steps == 0:
            problems.add("trainer.effective_batch_size",
                         f"must be a multiple of batch_size ({trainer['batch_size']}), got {effective}")
        elif explicit is not None and explicit != steps:
            problems.add("trainer.effective_batch_size",
                         f"{effective} disagrees with batch_size {trainer['batch_size']} x "
                         f"gradient_accumulation_steps {explicit}; set one of them")
        else:
            trainer["gradient_accumulation_steps"] = steps
    trainer["effective_batch_size"] = trainer["batch_size"] * trainer["gradient_accumulation_steps"]
    optimizer = trainer["optimizer"]
    if optimizer and optimizer["type"] == "sgd" and optimizer["nesterov"] and optimizer["momentum"] <= 0:
        problems.add("trainer.optimizer.nesterov", "needs momentum > 0")
    return trainer


def _check_cross_references(config: dict, problems: Problems) -> None:
    """Checks between sections; each runs when the sections it reads resolved, so these problems are
    reported together with the rest instead of on the next run."""
    seen: dict[str, str] = {}
    for role in ("input_features", "output_features"):
        for i, feature in enumerate(config.get(role) or []):
            if feature is None:
                continue
            path = join(role, i)
            if "." in feature["name"] or not feature["name"].strip():
                problems.add(join(path, "name"), f"'{feature['name']}' cannot be empty or contain '.' (it separates "
                                                 "layer names); name the feature otherwise and set column: to the column")
            if feature["name"] in seen:
                problems.add(join(path, "name"), f"'{feature['name']}' is already the name of {seen[feature['name']]}")
            seen.setdefault(feature["name"], path)
    output_list = config.get("output_features")
    if config["trainer"] is not None and output_list and None not in output_list:
        check_validation_target(config["trainer"], {feature["name"]: feature for feature in output_list}, problems)
    preprocessing = config["preprocessing"]
    split = preprocessing["split"] if preprocessing is not None else None
    if split is not None and split["type"] == "stratify" and output_list is not None and None not in output_list:
        categorical = {f["column"] for f in output_list if f["type"] in ("category", "binary")}
        if split["column"] not in categorical:
            problems.add("preprocessing.split.column",
                         f"stratify needs the column of a binary or category output, got '{split['column']}'")


def check_validation_target(trainer: dict, outputs: dict[str, dict], problems: Problems) -> None:
    field = trainer["validation_field"] or (next(iter(outputs)) if len(outputs) == 1 else "combined")
    trainer["validation_field"] = field
    if field != "combined" and field not in outputs:
        problems.unknown_name("trainer.validation_field", "output feature", field, ["combined", *outputs])
    elif field == "combined":
        if trainer["validation_metric"] != "loss":
            problems.add("trainer.validation_metric",
                         f"validation_field 'combined' has only the metric 'loss', got '{trainer['validation_metric']}'")
    elif trainer["validation_metric"] not in outputs[field]["metrics"]:
        problems.unknown_name("trainer.validation_metric", "metric", trainer["validation_metric"],
                              outputs[field]["metrics"], f" for output '{field}'")
