"""Config validation: every problem at once, each with its key path and the closest valid names."""
import copy
import re

import pytest

from framework.config.resolve import resolve_config
from framework.errors import ConfigError
from config_problems import problems_of


def base(**extra) -> dict:
    config = {
        "input_features": [{"name": "x", "type": "number"}, {"name": "color", "type": "category"}],
        "output_features": [{"name": "label", "type": "binary"}],
    }
    config.update(extra)
    return config


def test_every_problem_is_reported_at_once_with_its_key_path():
    raw = {
        "input_features": [{"name": "x", "type": "numbr"}, {"name": "c", "type": "category", "encodr": {}}],
        "output_features": [{"name": "y", "type": "binary", "los": {}}],
        "trainr": {},
        "seed": -1,
        "combiner": {"type": "concat", "output_size": 0},
        "trainer": {"epochs": 0, "batch_sise": 8, "optimizer": {"type": "adm"}},
    }
    problems = problems_of(raw)
    assert set(problems) == {
        "input_features[0].type", "input_features[1].encodr", "output_features[0].los", "trainr", "seed",
        "combiner.output_size", "trainer.epochs", "trainer.batch_sise", "trainer.optimizer.type",
    }
    with pytest.raises(ConfigError) as caught:
        resolve_config(raw)
    text = str(caught.value)
    assert text.startswith("Invalid config: 9 problems")
    assert "  - trainer.epochs: must be greater than or equal to 1 (got 0)" in text.splitlines()


def test_a_bad_top_level_value_does_not_hide_the_sections_problems():
    problems = problems_of({"input_features": {"x": "number"}, "trainer": {"epochs": 0}})
    assert problems["input_features"] == "not a valid list (got {'x': 'number'})"
    assert problems["output_features"] == "required key is missing"
    assert "trainer.epochs" in problems


@pytest.mark.parametrize("raw, path, near", [
    (base(trainr={}), "trainr", "trainer"),
    (base(preprocesing={}), "preprocesing", "preprocessing"),
    (base(trainer={"learning_rte": 0.1}), "trainer.learning_rte", "learning_rate"),
    (base(trainer={"optimizer": {"type": "sgd", "momentun": 0.9}}), "trainer.optimizer.momentun", "momentum"),
    (base(trainer={"learning_rate_scheduler": {"decay_step": 3}}), "trainer.learning_rate_scheduler.decay_step",
     "decay_steps"),
    (base(preprocessing={"split": {"probabilites": [0.8, 0.1, 0.1]}}), "preprocessing.split.probabilites",
     "probabilities"),
    (base(combiner={"type": "concat", "num_fc_layer": 2}), "combiner.num_fc_layer", "num_fc_layers"),
    (base(input_features=[{"name": "x", "type": "number", "colum": "a"}]), "input_features[0].colum", "column"),
    (base(input_features=[{"name": "c", "type": "category", "encoder": {"embeding_size": 3}}]),
     "input_features[0].encoder.embeding_size", "embedding_size"),
    (base(input_features=[{"name": "x", "type": "number", "preprocessing": {"normalisation": "minmax"}}]),
     "input_features[0].preprocessing.normalisation", "normalization"),
    (base(output_features=[{"name": "y", "type": "binary", "loss": {"positive_weight": 2.0}}]),
     "output_features[0].loss.positive_weight", "positive_class_weight"),
])
def test_unknown_keys_name_the_closest_valid_key(raw, path, near):
    problems = problems_of(raw)
    assert list(problems) == [path]
    assert problems[path].startswith("unknown key; did you mean") and f"'{near}'" in problems[path]


@pytest.mark.parametrize("raw, path, expected", [
    (base(input_features=[{"name": "x", "type": "numbr"}]), "input_features[0].type",
     "unknown feature type 'numbr'; did you mean 'number'?"),
    (base(input_features=[{"name": "x", "type": "number", "encoder": {"type": "dence"}}]),
     "input_features[0].encoder.type", "unknown encoder 'dence'; did you mean 'dense'?"),
    (base(output_features=[{"name": "y", "type": "category", "decoder": "clasifier"}]),
     "output_features[0].decoder.type", "unknown decoder 'clasifier'; did you mean 'classifier'?"),
    (base(output_features=[{"name": "y", "type": "number", "loss": {"type": "hubber"}}]),
     "output_features[0].loss.type", "unknown loss 'hubber'; did you mean 'huber'?"),
    (base(output_features=[{"name": "y", "type": "binary", "metrics": ["acuracy"]}]),
     "output_features[0].metrics[0]", "unknown metric 'acuracy' for binary outputs; did you mean 'accuracy'?"),
    (base(trainer={"optimizer": {"type": "adamw2"}}), "trainer.optimizer.type", "unknown optimizer 'adamw2'"),
    (base(combiner={"type": "concatenate"}), "combiner.type", "unknown combiner 'concatenate'; did you mean 'concat'?"),
])
def test_unknown_component_names_suggest_close_names(raw, path, expected):
    problems = problems_of(raw)
    assert list(problems) == [path]
    assert problems[path].startswith(expected)


def test_unknown_name_far_from_everything_lists_the_valid_names():
    problems = problems_of(base(output_features=[{"name": "y", "type": "number", "loss": {"type": "zzz"}}]))
    assert problems["output_features[0].loss.type"] == "unknown loss 'zzz'; valid: huber, mae, mse"


@pytest.mark.parametrize("raw, path, served", [
    (base(input_features=[{"name": "x", "type": "number", "encoder": {"type": "sparse"}}]),
     "input_features[0].encoder.type", "category"),
    (base(output_features=[{"name": "y", "type": "binary", "decoder": {"type": "classifier"}}]),
     "output_features[0].decoder.type", "category"),
    (base(output_features=[{"name": "y", "type": "binary", "loss": {"type": "mse"}}]),
     "output_features[0].loss.type", "number"),
])
def test_a_name_registered_for_another_type_says_which_types_it_serves(raw, path, served):
    problems = problems_of(raw)
    serves = re.search(r"\(it serves ([^)]*)\)", problems[path]).group(1).split(", ")
    assert served in serves
    assert "for " + raw["input_features" if path.startswith("input") else "output_features"][0]["type"] \
        + " features" in problems[path]


@pytest.mark.parametrize("trainer, path, fragment", [
    ({"epochs": "3"}, "trainer.epochs", "not a valid integer (got '3')"),
    ({"batch_size": 1.5}, "trainer.batch_size", "not a valid integer (got 1.5)"),
    ({"batch_size": 0}, "trainer.batch_size", "greater than or equal to 1 (got 0)"),
    ({"learning_rate": 0}, "trainer.learning_rate", "greater than 0.0 (got 0)"),
    ({"progress_bar": "yes"}, "trainer.progress_bar", "not a valid boolean (got 'yes')"),
    ({"precision": "fp8"}, "trainer.precision", "must be one of: fp32, bf16, fp16; did you mean 'fp32' or 'fp16'? (got 'fp8')"),
    ({"early_stop": -1}, "trainer.early_stop", "greater than or equal to 0 (got -1)"),
    ({"learning_rate_scheduler": {"warmup_fraction": 1.5}}, "trainer.learning_rate_scheduler.warmup_fraction",
     "less than or equal to 1.0 (got 1.5)"),
    ({"optimizer": {"type": "sgd", "nesterov": True}}, "trainer.optimizer.nesterov", "needs momentum > 0"),
    ({"optimizer": "sgd"}, "trainer.optimizer", "not a valid mapping type (got 'sgd')"),
])
def test_wrong_types_and_ranges_in_the_trainer(trainer, path, fragment):
    problems = problems_of(base(trainer=trainer))
    assert list(problems) == [path]
    assert fragment in problems[path]


@pytest.mark.parametrize("raw, path, fragment", [
    (base(input_features=[{"name": "c", "type": "category", "encoder": {"embedding_size": 0}}]),
     "input_features[0].encoder.embedding_size", "greater than or equal to 1"),
    (base(input_features=[{"name": "c", "type": "category", "encoder": {"dropout": 1.0}}]),
     "input_features[0].encoder.dropout", "1.0"),
    (base(output_features=[{"name": "y", "type": "binary", "threshold": 2}]), "output_features[0].threshold",
     "less than or equal to 1.0 (got 2)"),
    (base(output_features=[{"name": "y", "type": "number", "top_k": 2}]), "output_features[0].top_k",
     "applies to category outputs only"),
    (base(preprocessing={"sample_ratio": 0}), "preprocessing.sample_ratio", "0.0"),
    (base(preprocessing={"split": {"probabilities": [0.5, 0.6, 0.1]}}), "preprocessing.split.probabilities",
     "summing to 1"),
    (base(preprocessing={"split": {"type": "fixed"}}), "preprocessing.split.column",
     "required for split type 'fixed'"),
    (base(input_features=[{"name": "a.b", "type": "number"}]), "input_features[0].name",
     "cannot be empty or contain '.'"),
    (base(input_features=[{"type": "number"}]), "input_features[0].name", "required key is missing"),
    (base(input_features=[]), "input_features", "needs at least one input feature"),
    (base(input_features=["x"]), "input_features[0]", "expected a mapping, got a string ('x')"),
])
def test_wrong_values_in_features_and_preprocessing(raw, path, fragment):
    problems = problems_of(raw)
    assert list(problems) == [path]
    assert fragment in problems[path]


def test_effective_batch_size_must_be_a_multiple_of_batch_size():
    problems = problems_of(base(trainer={"batch_size": 8, "effective_batch_size": 20}))
    assert problems == {"trainer.effective_batch_size": "must be a multiple of batch_size (8), got 20"}


def test_effective_batch_size_sets_gradient_accumulation_steps():
    trainer = resolve_config(base(trainer={"batch_size": 8, "effective_batch_size": 32}))["trainer"]
    assert trainer["gradient_accumulation_steps"] == 4 and trainer["effective_batch_size"] == 32


def test_effective_batch_size_contradicting_accumulation_steps_is_an_error():
    problems = problems_of(base(trainer={"batch_size": 8, "effective_batch_size": 32,
                                         "gradient_accumulation_steps": 2}))
    assert "disagrees with batch_size 8 x gradient_accumulation_steps 2" in problems["trainer.effective_batch_size"]


def test_unknown_validation_field_and_metric():
    problems = problems_of(base(trainer={"validation_field": "labels"}))
    assert problems == {"trainer.validation_field": "unknown output feature 'labels'; did you mean 'label'?"}
    problems = problems_of(base(trainer={"validation_metric": "acuracy"}))
    assert problems["trainer.validation_metric"].startswith("unknown metric 'acuracy' for output 'label'; "
                                                            "did you mean 'accuracy'?")
    problems = problems_of(base(trainer={"validation_metric": "r2"}))  # a number metric, not a binary one
    assert "valid: accuracy, f1, loss, precision, recall, roc_auc" in problems["trainer.validation_metric"]


def test_validation_field_combined_has_only_loss():
    two = base(output_features=[{"name": "a", "type": "binary"}, {"name": "b", "type": "number"}])
    assert resolve_config(two)["trainer"]["validation_field"] == "combined"
    problems = problems_of(dict(two, trainer={"validation_metric": "accuracy"}))
    assert "has only the metric 'loss'" in problems["trainer.validation_metric"]


def test_validation_field_defaults_to_the_only_output():
    assert resolve_config(base())["trainer"]["validation_field"] == "label"


def test_duplicate_feature_names_across_inputs_and_outputs():
    raw = base(input_features=[{"name": "x", "type": "number"}, {"name": "x", "type": "number", "column": "z"}],
               output_features=[{"name": "x", "type": "binary", "column": "y"}])
    problems = problems_of(raw)
    assert problems == {"input_features[1].name": "'x' is already the name of input_features[0]",
                        "output_features[0].name": "'x' is already the name of input_features[0]"}


def test_stratify_needs_a_categorical_output_column():
    problems = problems_of(base(preprocessing={"split": {"type": "stratify", "column": "x"}}))
    assert "stratify needs the column of a binary or category output, got 'x'" in problems["preprocessing.split.column"]
    resolved = resolve_config(base(preprocessing={"split": {"type": "stratify", "column": "label"}}))
    assert resolved["preprocessing"]["split"]["column"] == "label"


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="a config must be a mapping of sections, got list"):
        resolve_config([1, 2])


# -- defaults ------------------------------------------------------------------------------------

def test_defaults_are_merged_into_features_and_features_override_them():
    raw = base(
        input_features=[
            {"name": "x", "type": "number"},
            {"name": "z", "type": "number", "preprocessing": {"normalization": "zscore"}},
            {"name": "c", "type": "category", "encoder": {"embedding_size": 8}},
            {"name": "d", "type": "category", "encoder": {"type": "sparse"}},
        ],
        output_features=[{"name": "y", "type": "number"}],
        defaults={
            "number": {"preprocessing": {"normalization": "minmax", "fill_value": 3.0},
                       "decoder": {"num_fc_layers": 2}, "loss": {"type": "huber", "delta": 0.5}},
            "category": {"encoder": {"type": "dense", "embedding_size": 4, "dropout": 0.25}},
        })
    config = resolve_config(raw)
    x, z, c, d = config["input_features"]
    assert x["preprocessing"]["normalization"] == "minmax" and x["preprocessing"]["fill_value"] == 3.0
    assert z["preprocessing"]["normalization"] == "zscore" and z["preprocessing"]["fill_value"] == 3.0
    assert c["encoder"] == {"type": "dense", "embedding_size": 8, "dropout": 0.25, "initializer": "xavier_uniform",
                            "trainable": True}
    assert d["encoder"] == {"type": "sparse"}  # another encoder type takes none of the default's settings
    assert "decoder" not in x and "loss" not in x  # decoder and loss defaults reach outputs only
    output = config["output_features"][0]
    assert output["decoder"]["num_fc_layers"] == 2
    assert output["loss"] == {"type": "huber", "delta": 0.5}
    assert output["preprocessing"]["normalization"] == "minmax"
    assert output["preprocessing"]["missing_value_strategy"] == "drop_row"  # outputs keep their own default


def test_encoder_defaults_do_not_reach_outputs_of_the_same_type():
    raw = base(input_features=[{"name": "x", "type": "binary"}], output_features=[{"name": "y", "type": "binary"}],
               defaults={"binary": {"encoder": {"type": "dense", "output_size": 4},
                                    "loss": {"positive_class_weight": 2.0}}})
    config = resolve_config(raw)
    assert config["input_features"][0]["encoder"]["output_size"] == 4
    assert config["output_features"][0]["loss"]["positive_class_weight"] == 2.0


def test_problems_in_defaults_are_reported_under_defaults_even_when_no_feature_uses_them():
    raw = base(defaults={
        "number": {"preprocessing": {"normalization": "log2"}, "encoder": {"type": "dense", "output_sise": 3},
                   "decoder": {"num_fc_layers": -1}, "encodr": {}},
        "txt": {},
        "binary": {"loss": {"type": "softmax_cross_entropy"}},
    })
    problems = problems_of(raw)
    assert set(problems) == {
        "defaults.number.preprocessing.normalization", "defaults.number.encoder.output_sise",
        "defaults.number.decoder.num_fc_layers", "defaults.number.encodr", "defaults.txt",
        "defaults.binary.loss.type",
    }
    assert "did you mean 'output_size'" in problems["defaults.number.encoder.output_sise"]
    assert "did you mean 'encoder'" in problems["defaults.number.encodr"]
    assert problems["defaults.txt"].startswith("unknown feature type 'txt'")
    assert "did you mean 'text'" in problems["defaults.txt"]
    assert "(it serves category)" in problems["defaults.binary.loss.type"]


# -- resolved configs ------------------------------------------------------------------------------

def test_every_setting_is_explicit_after_resolution():
    config = resolve_config(base())
    assert config["input_features"][0]["preprocessing"] == {
        "missing_value_strategy": "fill_with_mean", "fill_value": 0.0, "normalization": "zscore"}
    assert config["input_features"][1]["encoder"]["type"] == "dense"
    assert config["output_features"][0]["metrics"] == ["loss", "accuracy", "roc_auc", "precision", "recall", "f1"]
    assert config["output_features"][0]["preprocessing"]["missing_value_strategy"] == "drop_row"
    assert config["combiner"]["type"] == "concat"
    assert config["trainer"]["optimizer"]["type"] == "adam"
    assert config["preprocessing"]["split"] == {"type": "random", "probabilities": [0.7, 0.1, 0.2], "column": None}
    assert config["framework_version"]


def test_listed_metrics_keep_loss_first_and_drop_repeats():
    raw = base(output_features=[{"name": "y", "type": "binary", "metrics": ["f1", "accuracy", "f1"]}])
    assert resolve_config(raw)["output_features"][0]["metrics"] == ["loss", "f1", "accuracy"]


@pytest.mark.parametrize("raw", [
    base(),
    base(defaults={"number": {"preprocessing": {"normalization": "minmax"}},
                   "category": {"encoder": {"type": "sparse"}}},
         trainer={"batch_size": 8, "effective_batch_size": 16, "optimizer": {"type": "sgd", "momentum": 0.9}},
         preprocessing={"split": {"type": "stratify", "column": "label"}}),
])
def test_resolving_a_resolved_config_gives_the_same_config(raw):
    once = resolve_config(copy.deepcopy(raw))
    twice = resolve_config(copy.deepcopy(once))
    assert twice == once


def test_resolution_does_not_modify_its_input():
    raw = base(defaults={"number": {"preprocessing": {"normalization": "minmax"}}},
               trainer={"batch_size": 8, "effective_batch_size": 16})
    before = copy.deepcopy(raw)
    resolve_config(raw)
    assert raw == before
