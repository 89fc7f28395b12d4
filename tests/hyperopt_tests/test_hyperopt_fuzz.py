"""Fuzzing the hyperopt section: any value resolves or raises ConfigError, never anything else, and a
resolved section resolves to itself."""
import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.config.resolve import resolve_config
from framework.errors import ConfigError
from mutation import mutate

VALID = {
    "input_features": [{"name": "x", "type": "number"}, {"name": "c", "type": "category"}],
    "output_features": [{"name": "y", "type": "binary"}],
}
KEYS = ["parameters", "space", "lower", "upper", "step", "log", "categories", "values", "metric", "goal",
        "output_feature", "split", "num_samples", "sampler", "pruner", "executor", "num_workers", "type", "seed",
        "n_startup_trials", "min_resource", "trainer.learning_rate", "combiner.output_size", "input_features.c.encoder",
        "input_features[1].encoder.embedding_size", "trainer.optimizer", "trainer.optimizer.betas[0]", "trainer..x"]
NAMES = ["choice", "randint", "uniform", "loguniform", "int", "float", "grid", "tpe", "random", "median",
         "hyperband", "none", "loss", "accuracy", "roc_auc", "y", "combined", "minimize", "maximize", "validation",
         "train", "test", "adam", "sgd", "dense"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(-2, 2, allow_nan=False),
                    st.sampled_from(NAMES), st.text(max_size=4))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=14)


def resolves_or_config_error(section) -> None:
    config = {**copy.deepcopy(VALID), "hyperopt": section}
    try:
        resolved = resolve_config(config)
    except ConfigError as error:
        assert error.problems and all(str(p) for p in error.problems)
        return
    assert resolve_config(copy.deepcopy(resolved)).get("hyperopt") == resolved.get("hyperopt")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_arbitrary_sections_never_crash_the_validator(section):
    resolves_or_config_error(section)


SECTION = {"parameters": {"trainer.learning_rate": {"space": "loguniform", "lower": 0.001, "upper": 0.1},
                          "combiner.output_size": {"space": "int", "lower": 4, "upper": 16, "step": 4},
                          "trainer.optimizer": {"space": "choice", "categories": [{"type": "adam"}, {"type": "sgd"}]}},
           "sampler": {"type": "tpe", "seed": 1}, "pruner": "median", "num_samples": 3}
paths = st.lists(st.sampled_from(KEYS) | st.integers(0, 1), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(paths, values), min_size=1, max_size=2))
def test_mutations_of_a_valid_section_never_crash_the_validator(mutations):
    section = copy.deepcopy(SECTION)
    for path, value in mutations:
        mutate(section, path, value)
    resolves_or_config_error(section)
