"""Number features: strict parsing, fill strategies and normalisation fitted on the training split."""
import numpy as np
import pandas as pd
import pytest
import torch

from framework.config.fields import defaults_of
from framework.errors import DataError
from framework.features.number import NumberFeature, NumberPreprocessing

TRAIN = pd.Series([1.0, 2.0, 2.0, np.nan, 7.0])
PRESENT = np.array([1.0, 2.0, 2.0, 7.0])


def settings(**overrides) -> dict:
    return {**defaults_of(NumberPreprocessing), **overrides}


def fit_transform(train: pd.Series, column: pd.Series, **overrides) -> tuple[dict, np.ndarray]:
    s = settings(**overrides)
    metadata = NumberFeature.fit(train, s, "n")
    return metadata, NumberFeature.transform(column, s, metadata, "n")


def test_zscore_uses_the_training_mean_and_std_and_fills_with_the_mean():
    metadata, values = fit_transform(TRAIN, TRAIN)
    mean, std = PRESENT.mean(), PRESENT.std()
    expected = (np.array([1.0, 2.0, 2.0, mean, 7.0]) - mean) / std
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert values.dtype == np.float32
    assert metadata["mean"] == pytest.approx(3.0) and metadata["std"] == pytest.approx(std)


def test_minmax_scales_to_the_training_range():
    _, values = fit_transform(TRAIN, pd.Series([1.0, 4.0, 7.0, 13.0]), normalization="minmax")
    np.testing.assert_allclose(values, [0.0, 0.5, 1.0, 2.0], rtol=1e-6)  # outside the range is not clipped


def test_log1p():
    _, values = fit_transform(TRAIN, pd.Series([0.0, 1.0, 9.0]), normalization="log1p")
    np.testing.assert_allclose(values, np.log1p([0.0, 1.0, 9.0]), rtol=1e-6)


def test_log1p_rejects_values_at_or_below_minus_one():
    with pytest.raises(DataError, match="log1p normalization needs values > -1"):
        fit_transform(pd.Series([-1.0, 2.0]), pd.Series([0.0]), normalization="log1p")
    with pytest.raises(DataError, match="log1p normalization needs values > -1, got -3.0"):
        fit_transform(TRAIN, pd.Series([-3.0]), normalization="log1p")


def test_no_normalization_keeps_values():
    _, values = fit_transform(TRAIN, pd.Series([1.5, -2.0]), normalization=None)
    np.testing.assert_array_equal(values, np.float32([1.5, -2.0]))


@pytest.mark.parametrize("strategy, extra, fill", [
    ("fill_with_mean", {}, 3.0),
    ("fill_with_mode", {}, 2.0),
    ("fill_with_const", {"fill_value": -5.0}, -5.0),
])
def test_fill_strategies(strategy, extra, fill):
    metadata, values = fit_transform(TRAIN, pd.Series([np.nan, None, 1.0], dtype=object),
                                     missing_value_strategy=strategy, normalization=None, **extra)
    assert metadata["fill_value"] == fill
    np.testing.assert_array_equal(values, np.float32([fill, fill, 1.0]))


def test_a_constant_column_does_not_divide_by_zero():
    _, values = fit_transform(pd.Series([4.0, 4.0]), pd.Series([4.0, 5.0]))
    np.testing.assert_array_equal(values, np.float32([0.0, 1.0]))
    _, values = fit_transform(pd.Series([4.0, 4.0]), pd.Series([4.0, 5.0]), normalization="minmax")
    np.testing.assert_array_equal(values, np.float32([0.0, 1.0]))


def test_numeric_strings_and_blank_cells_parse():
    column = pd.Series(["1.5", " 2 ", "", None, "1e3"], dtype=object)
    _, values = fit_transform(pd.Series([0.0, 1.0]), column, normalization=None,
                              missing_value_strategy="fill_with_const")
    np.testing.assert_array_equal(values, np.float32([1.5, 2.0, 0.0, 0.0, 1000.0]))


def test_unparsable_strings_name_their_count_and_index():
    column = pd.Series(["1", "2", "abc", "4", None, "?"])
    with pytest.raises(DataError) as caught:
        NumberFeature.fit(column, settings(), "age")
    message = str(caught.value)
    assert "number feature 'age': 2 rows (at index 2, 5; values 'abc', '?') are not numbers" in message
    assert "declare the column as category" in message


def test_unparsable_strings_at_predict_time_are_reported_too():
    metadata = NumberFeature.fit(TRAIN, settings(), "age")
    with pytest.raises(DataError, match=r"1 row \(at index 1; values 'ten'\)"):
        NumberFeature.transform(pd.Series(["3", "ten"]), settings(), metadata, "age")


def test_infinite_values_are_an_error():
    with pytest.raises(DataError, match="are infinite"):
        NumberFeature.fit(pd.Series(["1", "inf"]), settings(), "n")


def test_every_value_missing_in_training_is_an_error():
    with pytest.raises(DataError, match="every value in the training split is missing"):
        NumberFeature.fit(pd.Series([np.nan, np.nan]), settings(), "n")


@pytest.mark.parametrize("normalization", ["zscore", "minmax", "log1p", None])
def test_predictions_are_scaled_back_to_the_users_units(normalization):
    column = pd.Series([0.5, 2.0, 9.0])
    metadata, scaled = fit_transform(TRAIN, column, normalization=normalization)
    predicted = NumberFeature.predict(torch.from_numpy(scaled).unsqueeze(-1), metadata, {})["predictions"]
    np.testing.assert_allclose(predicted.numpy(), column.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(NumberFeature.metric_target(torch.from_numpy(scaled), metadata).numpy(),
                               column.to_numpy(), rtol=1e-5)
