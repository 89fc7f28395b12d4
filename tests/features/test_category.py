"""Category features: a vocabulary ordered by training frequency, <UNK> (index 0) for the rest."""
import numpy as np
import pandas as pd
import pytest

from framework.config.fields import defaults_of
from framework.errors import DataError
from framework.features.category import UNKNOWN, CategoryFeature, CategoryPreprocessing

TRAIN = pd.Series(["b", "a", "c", "a", "b", "a", None, "d", "e", "e"])  # a:3, b:2, e:2, c:1, d:1


def settings(**overrides) -> dict:
    return {**defaults_of(CategoryPreprocessing), **overrides}


def test_vocabulary_is_ordered_by_frequency_then_label_after_unk():
    metadata = CategoryFeature.fit(TRAIN, settings(), "c")
    assert metadata["vocab"] == [UNKNOWN, "a", "b", "e", "c", "d"]
    assert metadata["frequencies"] == [0, 3, 2, 2, 1, 1]


def test_vocabulary_does_not_depend_on_row_order():
    shuffled = TRAIN.sample(frac=1.0, random_state=3)
    assert CategoryFeature.fit(shuffled, settings(), "c") == CategoryFeature.fit(TRAIN, settings(), "c")


def test_most_common_caps_the_vocabulary():
    metadata = CategoryFeature.fit(TRAIN, settings(most_common=2), "c")
    assert metadata["vocab"] == [UNKNOWN, "a", "b"]


def test_min_frequency_drops_rare_labels():
    metadata = CategoryFeature.fit(TRAIN, settings(min_frequency=2), "c")
    assert metadata["vocab"] == [UNKNOWN, "a", "b", "e"]
    codes = CategoryFeature.transform(pd.Series(["c", "e"]), settings(min_frequency=2), metadata, "c")
    np.testing.assert_array_equal(codes, [0, 3])  # 'c' was too rare: <UNK>


def test_unseen_and_missing_labels_map_to_unk_index_zero():
    metadata = CategoryFeature.fit(TRAIN, settings(), "c")
    codes = CategoryFeature.transform(pd.Series(["a", "zzz", None, " b ", ""]), settings(), metadata, "c")
    np.testing.assert_array_equal(codes, [1, 0, 0, 2, 0])
    assert codes.dtype == np.int64


def test_fill_with_mode_uses_the_most_common_label():
    s = settings(missing_value_strategy="fill_with_mode")
    metadata = CategoryFeature.fit(TRAIN, s, "c")
    assert metadata["fill_value"] == "a"
    np.testing.assert_array_equal(CategoryFeature.transform(pd.Series([None, "d"]), s, metadata, "c"), [1, 5])


def test_integral_floats_map_like_ints():
    """An integer column read beside NaN becomes float (2.0); its labels are still '1', '2'."""
    metadata = CategoryFeature.fit(pd.Series([1.0, 2.0, np.nan, 2.0]), settings(), "c")
    assert metadata["vocab"] == [UNKNOWN, "2", "1"]
    codes = CategoryFeature.transform(pd.Series([1, 2, 3]), settings(), metadata, "c")
    np.testing.assert_array_equal(codes, [2, 1, 0])
    codes = CategoryFeature.transform(pd.Series(["1", "2"]), settings(), metadata, "c")
    np.testing.assert_array_equal(codes, [2, 1])


def test_lowercase_merges_labels():
    s = settings(lowercase=True)
    metadata = CategoryFeature.fit(pd.Series(["Red", "red", "BLUE"]), s, "c")
    assert metadata["vocab"] == [UNKNOWN, "red", "blue"]
    np.testing.assert_array_equal(CategoryFeature.transform(pd.Series(["RED"]), s, metadata, "c"), [1])


def test_every_value_missing_in_training_is_an_error():
    with pytest.raises(DataError, match="category feature 'c': every value in the training split is missing"):
        CategoryFeature.fit(pd.Series([None, None]), settings(), "c")


def test_postprocess_names_a_probability_column_per_label():
    metadata = CategoryFeature.fit(pd.Series(["a", "a", "b"]), settings(), "c")
    probabilities = np.array([[0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
    columns = CategoryFeature.postprocess({"predictions": np.array([2, 1]), "probabilities": probabilities},
                                          metadata, "y")
    assert list(columns["y_predictions"]) == ["b", "a"]
    np.testing.assert_allclose(columns["y_probability"], [0.7, 0.5])
    np.testing.assert_allclose(columns[f"y_probabilities_{UNKNOWN}"], [0.1, 0.2])
    np.testing.assert_allclose(columns["y_probabilities_b"], [0.7, 0.3])
