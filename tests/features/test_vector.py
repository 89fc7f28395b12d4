"""Vector features: a fixed number of floats per row, [N, D] float32, optionally standardised."""
import numpy as np
import pandas as pd
import pytest
import torch

from framework.config.fields import defaults_of
from framework.errors import DataError
from framework.features.vector import VectorFeature, VectorPreprocessing

TRAIN = pd.Series(["1 2 3", " 4\t5  6 ", None, "", "7 8 9"])


def settings(**overrides) -> dict:
    return {**defaults_of(VectorPreprocessing), **overrides}


def test_whitespace_separated_cells_parse_and_missing_rows_take_the_mean():
    s = settings()
    metadata = VectorFeature.fit(TRAIN, s, "v")
    assert metadata["size"] == 3 and metadata["mean"] == [4.0, 5.0, 6.0]
    matrix = VectorFeature.transform(TRAIN, s, metadata, "v")
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, [[1, 2, 3], [4, 5, 6], [4, 5, 6], [4, 5, 6], [7, 8, 9]])
    assert VectorFeature.input_context(metadata) == {"input_size": 3}
    assert VectorFeature.output_context(metadata) == {"num_outputs": 3}


def test_fill_with_const_and_a_delimiter():
    s = settings(missing_value_strategy="fill_with_const", fill_value=-1.0, delimiter=",")
    column = pd.Series(["1, 2", None, "3,4 "])
    metadata = VectorFeature.fit(column, s, "v")
    np.testing.assert_array_equal(VectorFeature.transform(column, s, metadata, "v"), [[1, 2], [-1, -1], [3, 4]])


def test_cells_may_be_lists_or_numpy_arrays():
    column = pd.Series([np.array([1.0, 2.0]), [3, 4], None])
    metadata = VectorFeature.fit(column, settings(), "v")
    np.testing.assert_array_equal(VectorFeature.transform(column, settings(), metadata, "v"), [[1, 2], [3, 4], [2, 3]])


def test_zscore_standardises_each_dimension_and_predictions_are_scaled_back():
    s = settings(normalization="zscore")
    column = pd.Series(["1 10", "3 10", "5 10"])
    metadata = VectorFeature.fit(column, s, "v")
    matrix = VectorFeature.transform(column, s, metadata, "v")
    std = np.std([1, 3, 5])
    np.testing.assert_allclose(matrix, [[-2 / std, 0], [0, 0], [2 / std, 0]], rtol=1e-6)  # constant: std 1
    predicted = VectorFeature.predict(torch.from_numpy(matrix), metadata, {})["predictions"]
    torch.testing.assert_close(predicted, torch.tensor([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]]))
    torch.testing.assert_close(VectorFeature.metric_target(torch.from_numpy(matrix), metadata), predicted)


def test_rows_of_another_width_are_named_with_the_expected_width():
    with pytest.raises(DataError) as error:
        VectorFeature.fit(pd.Series(["1 2", "3 4", "5", "1 2 3", "7 8"]), settings(), "v")
    assert str(error.value) == ("vector feature 'v': every vector must have 2 values (the most common width in "
                                "training); found 1 or 3 values in 2 rows (at index 2, 3; values '5', '1 2 3')")
    metadata = VectorFeature.fit(pd.Series(["1 2"]), settings(), "v")
    with pytest.raises(DataError, match=r"must have 2 values .* found 3 values in 1 row \(at index 1; "):
        VectorFeature.transform(pd.Series(["1 2", "1 2 3"]), settings(), metadata, "v")


@pytest.mark.parametrize("bad", ["1 x 3", "1 nan 3", "1 inf 3", "1,2,3"])
def test_values_that_are_not_finite_numbers_are_named(bad):
    with pytest.raises(DataError, match=r"vector feature 'v' has values that are not finite numbers in 1 row "
                                        r"\(at index 1; values '" + bad + "'\\)"):
        VectorFeature.fit(pd.Series(["1 2 3", bad, "4 5 6"]), settings(), "v")


def test_every_value_missing_in_training_is_an_error():
    with pytest.raises(DataError, match="vector feature 'v': every value in the training split is missing"):
        VectorFeature.fit(pd.Series([None, " "]), settings(), "v")


def test_postprocess_gives_a_list_per_row():
    columns = VectorFeature.postprocess({"predictions": np.array([[1.0, 2.0], [3.0, 4.0]])}, {}, "y")
    assert list(columns["y_predictions"]) == [[1.0, 2.0], [3.0, 4.0]]
    assert pd.DataFrame(columns)["y_predictions"].iloc[1] == [3.0, 4.0]


def test_empty_delimiter_is_a_config_error():
    with pytest.raises(Exception, match="Shorter than minimum length 1"):
        VectorPreprocessing().load({"delimiter": ""})
