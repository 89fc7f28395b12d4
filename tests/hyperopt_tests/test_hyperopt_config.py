"""The hyperopt section is checked with the rest of the config, before any data is read: every problem at
once, each under its key path, with the closest valid names."""
import copy

import pytest

from framework.config import load_config
from framework.hyperopt.config import trial_config
from framework.hyperopt.paths import parse
from config_problems import problems_of
from synthetic import tiny_config


def with_search(parameters=None, **section):
    config = tiny_config()
    config["hyperopt"] = {"parameters": parameters or {"trainer.learning_rate": {"space": "loguniform", "lower": 1e-4,
                                                                                  "upper": 0.1}}, **section}
    return config


def test_defaults_are_filled_from_the_trainer_and_the_metric():
    search = load_config(with_search())["hyperopt"]
    assert search["output_feature"] == "label" and search["metric"] == "loss" and search["goal"] == "minimize"
    assert search["split"] == "validation" and search["num_samples"] == 10
    assert search["sampler"] == {"type": "tpe", "seed": 42, "n_startup_trials": 10, "multivariate": False}
    assert search["pruner"] == {"type": "none"} and search["executor"] == {"num_workers": 1}
    assert search["parameters"]["trainer.learning_rate"] == {"space": "loguniform", "lower": 1e-4, "upper": 0.1}
    # a metric that grows when better is maximized
    assert load_config(with_search(metric="roc_auc"))["hyperopt"]["goal"] == "maximize"


def test_a_resolved_config_resolves_to_itself():
    once = load_config(with_search(sampler={"type": "grid"}, parameters={
        "combiner.output_size": {"space": "int", "lower": 8, "upper": 24, "step": 8}}))
    assert load_config(copy.deepcopy(once)) == once
    assert once["hyperopt"]["num_samples"] == 3  # the grid's size


def test_a_path_not_in_the_config_lists_the_closest_ones():
    found = problems_of(with_search({
        "trainer.learnin_rate": {"space": "uniform", "lower": 0.001, "upper": 0.1},
        "input_features.colour.encoder.embedding_size": {"space": "int", "lower": 4, "upper": 8}}))
    assert "did you mean 'trainer.learning_rate'" in found["hyperopt.parameters.trainer.learnin_rate"]
    assert "'input_features.color.encoder.embedding_size'" in \
        found["hyperopt.parameters.input_features.colour.encoder.embedding_size"]


def test_inverted_bounds_an_unknown_space_and_a_malformed_path_are_reported_together():
    found = problems_of(with_search({
        "trainer.learning_rate": {"space": "loguniform", "lower": 0.1, "upper": 0.001},
        "combiner.output_size": {"space": "randit", "lower": 4, "upper": 8},
        "trainer..epochs": {"space": "int", "lower": 1, "upper": 3}}))
    assert found["hyperopt.parameters.trainer.learning_rate.upper"] == "must be greater than lower (0.1), got 0.001"
    assert "unknown search space 'randit'; did you mean 'randint'" in \
        found["hyperopt.parameters.combiner.output_size.space"]
    assert "is not a config path" in found["hyperopt.parameters.trainer..epochs"]


@pytest.mark.parametrize("settings, path, message", [
    ({"space": "loguniform", "lower": 0.0, "upper": 1.0}, "lower", "must be > 0 for a log scale"),
    ({"space": "int", "lower": 1, "upper": 9, "step": 2, "log": True}, "log", "cannot be combined with step"),
    ({"space": "choice", "categories": []}, "categories", "shorter than minimum length 1"),
    ({"lower": 1, "upper": 2}, "space", "required key is missing"),
    ({"space": "int", "lower": 1.5, "upper": 3}, "lower", "not a valid integer"),
])
def test_bad_space_settings(settings, path, message):
    found = problems_of(with_search({"combiner.output_size": settings}))
    assert message in found[f"hyperopt.parameters.combiner.output_size.{path}"]


def test_a_value_the_config_rejects_is_reported_before_the_search():
    found = problems_of(with_search({"combiner.output_size": {"space": "int", "lower": 0, "upper": 8},
                                     "trainer.optimizer": {"space": "choice", "categories": [{"type": "adam"},
                                                                                              {"type": "adamm"}]}}))
    assert "the value 0 makes the config invalid: combiner.output_size: must be greater than or equal to 1" in \
        found["hyperopt.parameters.combiner.output_size"]
    assert "unknown optimizer 'adamm'" in found["hyperopt.parameters.trainer.optimizer"]


def test_a_metric_the_output_does_not_produce():
    found = problems_of(with_search(metric="r2"))
    assert found["hyperopt.metric"].startswith("unknown metric 'r2' for output 'label'; ")
    assert "did you mean 'label'" in problems_of(with_search(output_feature="labels"))["hyperopt.output_feature"]
    assert "'combined' has only the metric 'loss'" in problems_of(with_search(output_feature="combined",
                                                                               metric="accuracy"))["hyperopt.metric"]
    assert "evaluate_training_set" in problems_of(with_search(split="train", metric="accuracy"))["hyperopt.split"]


def test_the_grid_sampler_needs_finite_spaces():
    found = problems_of(with_search(sampler="grid"))
    assert "the grid sampler needs a finite space" in found["hyperopt.parameters.trainer.learning_rate.space"]
    assert "did you mean 'median'" in problems_of(with_search(pruner="medain"))["hyperopt.pruner.type"]
    assert "unknown key" in problems_of(with_search(executor={"workers": 2}))["hyperopt.executor.workers"]


def test_other_problems_of_the_config_are_reported_with_the_section_s():
    config = with_search(sampler="grd")
    config["trainer"]["epochs"] = 0
    found = problems_of(config)
    assert "trainer.epochs" in found and "hyperopt.sampler.type" in found


def test_paths_by_name_and_by_index_write_into_the_raw_config():
    config = tiny_config()
    config["input_features"][2]["encoder"] = "dense"
    resolved = load_config(with_search())
    trial = trial_config(config, resolved, resolved["hyperopt"], {
        "input_features.color.encoder.embedding_size": 7, "input_features[0].preprocessing.normalization": "minmax",
        "trainer.optimizer.betas[1]": 0.99, "combiner": {"type": "concat", "output_size": 5}})
    assert trial["input_features"][2]["encoder"] == {"type": "dense", "embedding_size": 7}
    assert trial["input_features"][0]["preprocessing"] == {"normalization": "minmax"}
    assert trial["trainer"]["optimizer"]["betas"] == [0.9, 0.99]
    assert trial["combiner"] == {"type": "concat", "output_size": 5}
    # the trial watches the searched metric for early stopping and its best checkpoint
    assert (trial["trainer"]["validation_field"], trial["trainer"]["validation_metric"]) == ("label", "loss")
    assert "hyperopt" not in trial and config["input_features"][2]["encoder"] == "dense"  # the user's is untouched
    resolved_trial = load_config(trial)
    assert resolved_trial["input_features"][2]["encoder"]["embedding_size"] == 7


def test_parse():
    assert parse("input_features[0].encoder.x") == ["input_features", 0, "encoder", "x"]
    assert parse("a.b[1][2]") == ["a", "b", 1, 2]
    for bad in ("", ".a", "a.", "a..b", "[0].a", "a[x]", "a[0"):
        assert parse(bad) is None, bad


def test_a_bad_value_in_the_section_does_not_hide_the_parameters_problems():
    found = problems_of(with_search({"trainer.epoch": {"space": "int", "lower": 1, "upper": 2}}, num_samples=0,
                                    goal="up"))
    assert set(found) == {"hyperopt.num_samples", "hyperopt.goal", "hyperopt.parameters.trainer.epoch"}
    assert "did you mean 'trainer.epochs'" in found["hyperopt.parameters.trainer.epoch"]
