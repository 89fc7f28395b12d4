"""Property-based fuzzing of the config validator: every input resolves or raises ConfigError, never
anything else, and a resolved config resolves to itself."""
import copy
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.config.resolve import resolve_config
from framework.errors import ConfigError
from framework.registry import combiners, decoders, encoders, feature_types, losses, metrics, optimizers
from mutation import mutate

VALID = {
    "input_features": [{"name": "x", "type": "number"}, {"name": "c", "type": "category"}],
    "output_features": [{"name": "y", "type": "binary"}],
}
NAMES = sorted({*feature_types.names(), *encoders.names(), *decoders.names(), *combiners.names(),
                *losses.names(), *metrics.names(), *optimizers.names(), "numbr", "conact", "adamm", ""})
KEYS = ["type", "name", "column", "encoder", "decoder", "loss", "preprocessing", "trainer", "combiner",
        "optimizer", "epochs", "batch_size", "learning_rate", "split", "probabilities", "defaults", "metrics",
        "weight", "threshold", "top_k", "seed", "normalization", "missing_value_strategy", "unknown_key"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(NAMES))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4)),
    max_leaves=20)


def resolves_or_config_error(config) -> None:
    try:
        resolved = resolve_config(config)
    except ConfigError as error:
        assert error.problems and all(str(p) for p in error.problems)
        return
    again = resolve_config(copy.deepcopy(resolved))
    again.pop("framework_version"), resolved.pop("framework_version")
    assert again == resolved


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_arbitrary_values_never_crash_the_validator(config):
    resolves_or_config_error(config)


paths = st.lists(st.sampled_from(KEYS) | st.integers(0, 2), min_size=1, max_size=4)


@settings(max_examples=900, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(paths, values), min_size=1, max_size=3))
def test_mutations_of_a_valid_config_never_crash_the_validator(mutations):
    config = copy.deepcopy(VALID)
    for path, value in mutations:
        mutate(config, path, value)
    resolves_or_config_error(config)


def test_nan_and_infinite_numbers_are_config_errors():
    for bad in (math.nan, math.inf):
        try:
            resolve_config({**VALID, "trainer": {"learning_rate": bad}})
        except ConfigError as error:
            assert "trainer.learning_rate" in str(error)
        else:
            raise AssertionError(f"learning_rate {bad} was accepted")
