"""Date features: [N, 9] int64 calendar components; unparsable values are counted with examples."""
import numpy as np
import pandas as pd
import pytest

from framework.config.fields import defaults_of
from framework.errors import DataError
from framework.features.date import DateFeature, DatePreprocessing


def settings(**overrides) -> dict:
    return {**defaults_of(DatePreprocessing), **overrides}


def components(column, **overrides) -> np.ndarray:
    s = settings(**overrides)
    return DateFeature.transform(column, s, DateFeature.fit(column, s, "d"), "d")


def test_components_of_a_date_and_time():
    out = components(pd.Series(["2021-03-04 10:11:12"]))
    assert out.dtype == np.int64
    # year, month, day, weekday (Thursday = 3), yearday, hour, minute, second, second of the day
    np.testing.assert_array_equal(out, [[2021, 3, 4, 3, 63, 10, 11, 12, 36672]])


def test_formats_are_inferred_and_mixed_ones_parsed_one_by_one():
    out = components(pd.Series(["2020-01-05", "Jan 3 2020", "2020-02-29T23:00:00", "2020"]))
    np.testing.assert_array_equal(out[:, :5], [[2020, 1, 5, 6, 5], [2020, 1, 3, 4, 3], [2020, 2, 29, 5, 60],
                                               [2020, 1, 1, 2, 1]])
    assert out[2, 8] == 23 * 3600


def test_an_offset_converts_to_utc():
    np.testing.assert_array_equal(components(pd.Series(["2020-01-05T01:30:00+02:00"]))[0, :8],
                                  [2020, 1, 4, 5, 4, 23, 30, 0])


def test_datetime_format_reads_day_first_dates():
    out = components(pd.Series(["05/01/2020", "13/01/2020"]), datetime_format="%d/%m/%Y")
    np.testing.assert_array_equal(out[:, 1:3], [[1, 5], [1, 13]])


def test_datetime_columns_are_read_as_they_are():
    out = components(pd.Series(pd.to_datetime(["2020-01-01 05:00", None])))
    np.testing.assert_array_equal(out[0, [0, 5]], [2020, 5])


def test_missing_dates_take_the_fill_value_or_the_mode():
    column = pd.Series(["2020-06-01", None, "", "2021-01-02", "2021-01-02"])
    np.testing.assert_array_equal(components(column)[1:3, :3], [[1970, 1, 1], [1970, 1, 1]])
    np.testing.assert_array_equal(components(column, fill_value="2000-02-03")[1, :3], [2000, 2, 3])
    np.testing.assert_array_equal(components(column, missing_value_strategy="fill_with_mode")[1, :3], [2021, 1, 2])
    np.testing.assert_array_equal(components(column, missing_value_strategy="drop_row")[1, :3], [2021, 1, 2])


def test_unparsable_dates_are_counted_with_up_to_five_examples():
    column = pd.Series(["2020-01-01", "x", "yy", "2020-13-45", "zz", "soon", "??", "2020-01-02"])
    with pytest.raises(DataError) as error:
        DateFeature.fit(column, settings(), "d")
    assert str(error.value) == ("date feature 'd': 6 rows (at index 1, 2, 3, 4, 5, ...; values 'x', 'yy', "
                                "'2020-13-45', 'zz', 'soon', ...) could not be read as dates; fix them, or set "
                                "preprocessing.datetime_format")


def test_values_not_matching_the_given_format_are_errors():
    with pytest.raises(DataError, match=r"1 row \(at index 1; values '01/02/2020'\) do not match "
                                        r"preprocessing.datetime_format '%Y-%m-%d'"):
        DateFeature.fit(pd.Series(["2020-01-01", "01/02/2020"]), settings(datetime_format="%Y-%m-%d"), "d")


def test_a_fill_value_that_is_not_a_date_is_an_error():
    with pytest.raises(DataError, match="date feature 'd': preprocessing.fill_value 'never' is not a date"):
        DateFeature.fit(pd.Series(["2020-01-01"]), settings(fill_value="never"), "d")


def test_every_value_missing_in_training_is_an_error():
    with pytest.raises(DataError, match="date feature 'd': every value in the training split is missing"):
        DateFeature.fit(pd.Series([None, ""]), settings(), "d")
