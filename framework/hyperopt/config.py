"""The `hyperopt` config section, checked with the rest of the config before any data is read.

Every parameter path must name a setting of the resolved config, and each space's bounds or
categories are written into the config and resolved, so a value the config rejects
(`trainer.learning_rate` lower: 0) is reported now, under `hyperopt.parameters.<path>`, not as a
failed trial an hour into the search.
"""
from __future__ import annotations

import copy
import math
from typing import Any

from marshmallow import fields

from framework.config import fields as f
from framework.config.problems import Problems, did_you_mean, join
from framework.errors import ConfigError
from framework.hyperopt import paths
from framework.hyperopt.samplers import pruners, samplers
from framework.hyperopt.spaces import build, spaces

SPLITS = ("train", "validation", "test")
GOALS = {"min": "minimize", "max": "maximize"}
DEFAULT_NUM_SAMPLES = 10


class HyperoptSchema(f.Schema):
    parameters = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True), required=True,
                             metadata={"doc": "{config path: {space: choice, randint, uniform, loguniform, int, "
                                              "float or grid, ...its settings}}"})
    metric = f.Str(None, doc="metric to optimize (default: trainer.validation_metric)")
    output_feature = f.Str(None, doc="output whose metric is optimized, or 'combined' (default: "
                                     "trainer.validation_field); trials watch it for early stopping unless the "
                                     "trainer names its own")
    goal = f.Choice([None, "minimize", "maximize"], None, doc="default: the metric's own direction")
    split = f.Choice(list(SPLITS), "validation", doc="split whose metric is optimized")
    num_samples = f.Int(None, min=1, doc=f"trials in all, those of an interrupted search included (default: "
                                         f"{DEFAULT_NUM_SAMPLES}; with the grid sampler the grid's size)")
    sampler = f.Any_("tpe", doc="tpe, random or grid, or {type: ..., seed, ...its settings}")
    pruner = f.Any_("none", doc="none, median or hyperband, or {type: ..., ...its settings}")
    executor = f.Any_(None, doc="{num_workers: N}: trials run N at a time in separate processes (default 1)")


class _Lenient(HyperoptSchema):
    """The section's defaults alone: what a section with a bad value is checked against."""

    parameters = fields.Raw(load_default=dict)


class ExecutorSchema(f.Schema):
    num_workers = f.Int(1, min=1, doc="trials run at once, each in its own process")


def resolve_hyperopt(section: Any, raw: dict, config: dict, problems: Problems) -> dict | None:
    from framework.config.resolve import _resolve_component

    rest_is_valid = not problems.items  # paths and values are checked only against a valid config
    search = problems.load(HyperoptSchema, section, "hyperopt")
    loaded = search is not None
    if not loaded:  # a bad value is reported; the parameters are still checked, so all problems show at once
        if not isinstance(section, dict):
            return None
        search = {**f.defaults_of(_Lenient), **section}
    search["sampler"] = _resolve_component(search["sampler"], "hyperopt.sampler", samplers, None, "tpe", problems)
    search["pruner"] = _resolve_component(search["pruner"], "hyperopt.pruner", pruners, None, "none", problems)
    search["executor"] = problems.load(ExecutorSchema, search["executor"], "hyperopt.executor")
    given = search["parameters"] if isinstance(search["parameters"], dict) else {}
    search["parameters"] = {path: _resolve_space(path, settings, problems) for path, settings in given.items()}
    if not search["parameters"] and loaded:
        problems.add("hyperopt.parameters", "needs at least one parameter to search")
    if search["sampler"] is not None:
        search["sampler"]["seed"] = config["seed"] if search["sampler"]["seed"] is None else search["sampler"]["seed"]
        search["num_samples"] = _num_samples(search, problems) if loaded else None
    if rest_is_valid:
        # values are tried in the trials' configs, which need the target: only once it resolved
        probe = loaded and _resolve_target(search, config, problems)
        _check_parameters(search, raw, config, problems, probe)
    return search


def _resolve_space(path: str, settings: Any, problems: Problems) -> dict | None:
    where = join("hyperopt.parameters", path)
    if not problems.expect_mapping(where, settings):
        return None
    name = settings.get("space")
    if not isinstance(name, str) or name not in spaces:
        if name is None:
            problems.add(join(where, "space"), f"required key is missing; one of: {', '.join(spaces.names())}")
        else:
            problems.unknown_name(join(where, "space"), "search space", name, spaces.names())
        return None
    resolved = problems.load(spaces.get(name).schema, {k: v for k, v in settings.items() if k != "space"}, where)
    if resolved is None:
        return None
    resolved = {"space": name, **resolved}
    for key, message in build(resolved).problems():
        problems.add(join(where, key), message)
    return resolved


def _num_samples(search: dict, problems: Problems) -> int | None:
    if search["sampler"]["type"] != "grid":
        return search["num_samples"] or DEFAULT_NUM_SAMPLES
    sizes = []
    for path, settings in search["parameters"].items():
        if settings is None:
            continue
        grid = build(settings).grid()
        if grid is None:
            problems.add(join(join("hyperopt.parameters", path), "space"),
                         f"the grid sampler needs a finite space (choice, grid, randint, int, or float with step), "
                         f"got '{settings['space']}'")
        else:
            sizes.append(len(grid))
    return search["num_samples"] or math.prod(sizes)


def _resolve_target(search: dict, config: dict, problems: Problems) -> bool:
    """Fills output_feature, metric and goal; whether the metric is one the output reports."""
    from framework.registry import metrics

    trainer = config["trainer"]
    outputs = {feature["name"]: feature for feature in config["output_features"]}
    output = search["output_feature"] = search["output_feature"] or trainer["validation_field"]
    metric = search["metric"] = search["metric"] or trainer["validation_metric"]
    if output == "combined":
        if metric != "loss":
            problems.add("hyperopt.metric", f"output_feature 'combined' has only the metric 'loss', got '{metric}'; "
                                            f"set hyperopt.output_feature to one of: {', '.join(outputs)}")
            return False
        goal = "min"
    elif output not in outputs:
        problems.unknown_name("hyperopt.output_feature", "output feature", output, ["combined", *outputs])
        return False
    elif config["model_type"] == "llm":
        from framework.llm.config import EPOCH_GOALS

        if metric not in EPOCH_GOALS:
            problems.unknown_name("hyperopt.metric", "metric", metric, list(EPOCH_GOALS),
                                  f" for output '{output}' (an llm's epochs report the teacher-forced metrics; "
                                  "generating text every epoch would cost more than the epoch)")
            return False
        goal = EPOCH_GOALS[metric]
    elif metric not in outputs[output]["metrics"]:
        problems.unknown_name("hyperopt.metric", "metric", metric, outputs[output]["metrics"],
                              f" for output '{output}'")
        return False
    else:
        goal = metrics.get(metric, outputs[output]["type"]).extra["goal"]
    search["goal"] = search["goal"] or GOALS[goal]
    if search["split"] == "train" and metric != "loss" and not trainer["evaluate_training_set"]:
        problems.add("hyperopt.split", f"the training split reports only the loss each epoch; to optimize its "
                                       f"'{metric}' set trainer.evaluate_training_set: true")
    return True


def _check_parameters(search: dict, raw: dict, config: dict, problems: Problems, probe: bool) -> None:
    from framework.config.resolve import resolve_config

    known = None
    for path, settings in search["parameters"].items():
        where = join("hyperopt.parameters", path)
        tokens = paths.parse(path)
        if tokens is None:
            problems.add(where, "is not a config path: keys joined by '.', list items as [index] "
                                "(input_features.<name>.encoder.<key> or input_features[0].encoder.<key>)")
            continue
        if not paths.exists(config, tokens):
            known = known if known is not None else list(paths.all_paths(config))
            problems.add(where, f"no such setting in the config; {did_you_mean(path, known)}")
            continue
        for value in build(settings).probes() if settings is not None and probe else ():
            try:
                resolve_config(trial_config(raw, config, search, {path: value}))
            except ConfigError as error:
                for problem in error.problems:
                    problems.add(where, f"the value {value!r} makes the config invalid: {problem}")


def trial_config(raw: dict, config: dict, search: dict, values: dict[str, Any]) -> dict:
    """The user's raw config with the sampled `values` written in and the hyperopt section removed.

    Unless the trainer names its own, trials watch the searched metric for early stopping and their
    best checkpoint, so each trial's model is the best by the measure the search compares.
    """
    trial = copy.deepcopy({key: value for key, value in raw.items() if key != "hyperopt"})
    for path, value in values.items():
        paths.assign(trial, config, paths.parse(path), value)
    trainer = trial.get("trainer")
    if trainer is None or isinstance(trainer, dict):
        trainer = trial["trainer"] = dict(trainer or {})
        if "validation_field" not in trainer and "validation_metric" not in trainer:
            trainer["validation_field"], trainer["validation_metric"] = search["output_feature"], search["metric"]
    return trial


def reference_lines(schema_table, registry_sections) -> list[str]:
    """The section's part of `framework config-reference`, from the same schemas and registries."""
    lines = ["## `hyperopt`", "", "A search over the rest of the config: `framework hyperopt --config c.yaml "
             "--dataset d`.", ""] + schema_table(HyperoptSchema)
    lines += ["### `hyperopt.executor`", ""] + schema_table(ExecutorSchema)
    lines += registry_sections(spaces, "`hyperopt.parameters` spaces (`space:`)", None)
    lines += registry_sections(samplers, "`hyperopt.sampler` types", None)
    return lines + registry_sections(pruners, "`hyperopt.pruner` types", None)
