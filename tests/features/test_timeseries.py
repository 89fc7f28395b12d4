"""Time series features: variable-length float rows, NaN-padded, cut to max_length, optionally standardised."""
import numpy as np
import pandas as pd
import pytest

from framework.config.fields import defaults_of
from framework.errors import DataError
from framework.features.timeseries import TimeseriesFeature, TimeseriesPreprocessing

TRAIN = pd.Series(["1 2 3", " 4 5 ", None, "", "7 8 9 10"])


def settings(**overrides) -> dict:
    return {**defaults_of(TimeseriesPreprocessing), "normalization": None, **overrides}


def transform(column=TRAIN, **overrides) -> np.ndarray:
    s = settings(**overrides)
    return TimeseriesFeature.transform(column, s, TimeseriesFeature.fit(column, s, "t"), "t").padded()


def test_rows_keep_their_lengths_padded_with_nan_and_missing_rows_take_the_fill_series():
    padded = transform()
    assert padded.dtype == np.float32
    np.testing.assert_array_equal(padded, [[1, 2, 3, np.nan], [4, 5, np.nan, np.nan], [0, np.nan, np.nan, np.nan],
                                           [0, np.nan, np.nan, np.nan], [7, 8, 9, 10]])
    np.testing.assert_array_equal(transform(fill_value="1 1")[2], [1, 1, np.nan, np.nan])


def test_max_length_keeps_the_start_or_with_left_truncation_the_end():
    np.testing.assert_array_equal(transform(max_length=2)[[0, 4]], [[1, 2], [7, 8]])
    np.testing.assert_array_equal(transform(max_length=2, truncation_side="left")[[0, 1, 4]], [[2, 3], [4, 5], [9, 10]])


def test_zscore_uses_every_training_value():
    s = settings(normalization="zscore")
    column = pd.Series(["1 3", "5"])
    metadata = TimeseriesFeature.fit(column, s, "t")
    assert metadata["mean"] == 3.0 and metadata["std"] == pytest.approx(np.std([1, 3, 5]))
    values = TimeseriesFeature.transform(column, s, metadata, "t").values
    np.testing.assert_allclose(values, (np.array([1, 3, 5]) - 3) / np.std([1, 3, 5]), rtol=1e-6)


def test_delimiter_and_list_cells():
    np.testing.assert_array_equal(transform(pd.Series(["1;2", "3"]), delimiter=";"), [[1, 2], [3, np.nan]])
    np.testing.assert_array_equal(transform(pd.Series([[1, 2], np.array([3.0]), None])),
                                  [[1, 2], [3, np.nan], [0, np.nan]])


def test_values_that_are_not_numbers_are_named():
    with pytest.raises(DataError, match=r"timeseries feature 't' has values that are not finite numbers in 2 rows "
                                        r"\(at index 1, 2; values '1 b', 'nan'\)"):
        TimeseriesFeature.fit(pd.Series(["1 2", "1 b", "nan"]), settings(), "t")


def test_a_fill_value_that_is_not_numbers_is_an_error():
    with pytest.raises(DataError, match="fill_value must be one or more numbers written like a cell, got 'none'"):
        TimeseriesFeature.fit(TRAIN, settings(fill_value="none"), "t")


def test_every_value_missing_in_training_is_an_error():
    with pytest.raises(DataError, match="timeseries feature 't': every value in the training split is missing"):
        TimeseriesFeature.fit(pd.Series([None, ""]), settings(), "t")


def test_timeseries_encoders_take_no_context():
    assert TimeseriesFeature.input_context({}) == {}
    assert TimeseriesFeature.default_decoder is None
