"""Binary features: booleans, true/false words, or two labels with one named as true."""
import numpy as np
import pandas as pd
import pytest

from framework.config.fields import defaults_of
from framework.errors import DataError
from framework.features.binary import BinaryFeature, BinaryPreprocessing


def settings(**overrides) -> dict:
    return {**defaults_of(BinaryPreprocessing), **overrides}


def fit_transform(train, column, **overrides):
    s = settings(**overrides)
    metadata = BinaryFeature.fit(pd.Series(train), s, "b")
    return metadata, BinaryFeature.transform(pd.Series(column), s, metadata, "b")


def test_true_and_false_words_in_any_case_and_spacing():
    words = ["yes", "No", "TRUE", "false", "t", "F", "1", "0", " y ", "n", "on", "OFF"]
    _, values = fit_transform(["yes", "no"], words)
    np.testing.assert_array_equal(values, np.float32([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]))
    assert values.dtype == np.float32


def test_booleans_and_zero_one_numbers():
    _, values = fit_transform([True, False], [True, False, True])
    np.testing.assert_array_equal(values, [1, 0, 1])
    _, values = fit_transform([1, 0], [0, 1, 1])
    np.testing.assert_array_equal(values, [0, 1, 1])


def test_values_that_are_not_true_or_false_name_rows_and_suggest_true_label():
    with pytest.raises(DataError) as caught:
        fit_transform(["survived", "died", "died"], ["died"])
    message = str(caught.value)
    assert "binary feature 'b': 3 rows (at index 0, 1, 2" in message
    assert "set preprocessing.true_label" in message and "'survived', 'died'" in message


def test_true_label_maps_two_custom_labels():
    metadata, values = fit_transform(["survived", "died", "died", None], ["died", "survived", " survived "],
                                     true_label="survived")
    assert (metadata["true_label"], metadata["false_label"]) == ("survived", "died")
    np.testing.assert_array_equal(values, [0, 1, 1])
    assert BinaryFeature.labels(metadata) == ["died", "survived"]


def test_true_label_rejects_a_third_label_at_transform():
    metadata, _ = fit_transform(["survived", "died"], ["died"], true_label="survived")
    with pytest.raises(DataError, match=r"1 row \(at index 1; values 'lost'\) are neither 'survived' nor 'died'"):
        BinaryFeature.transform(pd.Series(["died", "lost"]), settings(true_label="survived"), metadata, "b")


@pytest.mark.parametrize("train", [["a", "b", "c"], ["x", "y"]])
def test_true_label_needs_two_labels_including_it(train):
    with pytest.raises(DataError, match="true_label 'a' needs a column of two labels including it"):
        fit_transform(train, [], true_label="a")


@pytest.mark.parametrize("strategy, extra, fill", [
    ("fill_with_mode", {}, 1.0),  # true is the more common training value
    ("fill_with_const", {"fill_value": False}, 0.0),
])
def test_missing_values_are_filled(strategy, extra, fill):
    metadata, values = fit_transform(["yes", "yes", "no", None], [None, "", "no"], missing_value_strategy=strategy,
                                     **extra)
    assert metadata["fill_value"] == fill
    np.testing.assert_array_equal(values, [fill, fill, 0.0])
    assert metadata["positive_fraction"] == pytest.approx(2 / 3)


def test_postprocess_gives_labels_and_probabilities_that_sum_to_one():
    metadata, _ = fit_transform(["survived", "died"], [], true_label="survived")
    arrays = {"predictions": np.array([True, False]), "probabilities": np.array([0.8, 0.3])}
    columns = BinaryFeature.postprocess(arrays, metadata, "y")
    assert list(columns["y_predictions"]) == ["survived", "died"]
    np.testing.assert_allclose(columns["y_probability"], [0.8, 0.7])
    np.testing.assert_allclose(columns["y_probabilities_survived"], [0.8, 0.3])
    np.testing.assert_allclose(columns["y_probabilities_died"], [0.2, 0.7])
