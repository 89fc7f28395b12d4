"""Bag features: each row's distinct label ids with their counts, (id, count) pairs padded with (0, 0)."""
import numpy as np
import pandas as pd
import pytest

from framework.config.fields import defaults_of
from framework.errors import DataError
from framework.features.bag import BagFeature
from framework.features.set import PAD, UNKNOWN

SETTINGS = defaults_of(BagFeature.preprocessing_schema)


def test_rows_become_id_count_pairs_sorted_by_id():
    metadata = BagFeature.fit(pd.Series(["a b a", "b c", None, "q a a a"]), SETTINGS, "b")
    assert metadata["vocab"] == [PAD, UNKNOWN, "a", "b", "c", "q"]
    ragged = BagFeature.transform(pd.Series(["a b a", "", "zz yy b", "c"]), SETTINGS, metadata, "b")
    assert ragged.values.dtype == np.int64 and ragged.values.shape == (5, 2)
    np.testing.assert_array_equal(ragged.lengths, [2, 0, 2, 1])
    np.testing.assert_array_equal(ragged.padded(), [[[2, 2], [3, 1]], [[0, 0], [0, 0]],
                                                    [[1, 2], [3, 1]], [[4, 1], [0, 0]]])


def test_bag_settings_are_the_set_settings():
    s = {**SETTINGS, "tokenizer": "comma", "lowercase": True}
    metadata = BagFeature.fit(pd.Series(["A,a, b"]), s, "b")
    assert metadata["vocab"] == [PAD, UNKNOWN, "a", "b"]
    np.testing.assert_array_equal(BagFeature.transform(pd.Series(["A,a, b"]), s, metadata, "b").values,
                                  [[2, 2], [3, 1]])


def test_bag_is_input_only_and_reports_its_vocabulary_size():
    assert BagFeature.default_decoder is None and BagFeature.default_metrics == ()
    assert BagFeature.input_context({"vocab": [PAD, UNKNOWN, "a"]}) == {"vocab_size": 3}


def test_every_value_missing_in_training_is_an_error():
    with pytest.raises(DataError, match="bag feature 'b': every value in the training split is missing"):
        BagFeature.fit(pd.Series([None, ""]), SETTINGS, "b")
