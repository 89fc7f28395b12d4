"""Set features: distinct label ids per row over a vocabulary <PAD>, <UNK>, then labels by row count."""
import numpy as np
import pandas as pd
import pytest
import torch

from framework.config.fields import defaults_of
from framework.errors import DataError
from framework.features.set import PAD, UNKNOWN, SetFeature, SetPreprocessing

TRAIN = pd.Series(["a b", "b  c a", None, "", "b b", "d"])  # rows holding: b 3, a 2, c 1, d 1


def settings(**overrides) -> dict:
    return {**defaults_of(SetPreprocessing), **overrides}


def fitted(column=TRAIN, **overrides):
    s = settings(**overrides)
    return s, SetFeature.fit(column, s, "s")


def rows_of(ragged) -> list[list[int]]:
    return [ragged.values[start:end].tolist() for start, end in zip(ragged.offsets[:-1], ragged.offsets[1:])]


def test_vocabulary_counts_rows_holding_each_label_after_pad_and_unk():
    _, metadata = fitted()
    assert metadata["vocab"] == [PAD, UNKNOWN, "b", "a", "c", "d"]
    assert metadata["frequencies"] == [0, 0, 3, 2, 1, 1]  # 'b b' counts once


def test_vocabulary_does_not_depend_on_row_order():
    assert fitted(TRAIN.sample(frac=1.0, random_state=4))[1] == fitted()[1]


def test_transform_gives_sorted_distinct_ids_with_unknowns_once_and_missing_empty():
    s, metadata = fitted()
    ragged = SetFeature.transform(pd.Series(["a b", "zz a yy", None, "b b a", "  ", "c"]), s, metadata, "s")
    assert rows_of(ragged) == [[2, 3], [1, 3], [], [2, 3], [], [4]]
    assert ragged.values.dtype == np.int64 and ragged.pad_value == 0
    np.testing.assert_array_equal(ragged.padded(), [[2, 3], [1, 3], [0, 0], [2, 3], [0, 0], [4, 0]])


@pytest.mark.parametrize("tokenizer, cell", [("comma", " a, b ,,"), ("semicolon", "a;b"), ("pipe", "a|b"),
                                             ("underscore", "a_b")])
def test_tokenizers_split_on_their_separator_and_strip_labels(tokenizer, cell):
    s, metadata = fitted(pd.Series(["a", "b"]), tokenizer=tokenizer)
    assert rows_of(SetFeature.transform(pd.Series([cell]), s, metadata, "s")) == [[2, 3]]


def test_comma_tokenizer_keeps_spaces_inside_labels():
    s, metadata = fitted(pd.Series(["new york, paris", "paris"]), tokenizer="comma")
    assert metadata["vocab"] == [PAD, UNKNOWN, "paris", "new york"]


def test_cells_may_be_lists_of_labels():
    s, metadata = fitted()
    ragged = SetFeature.transform(pd.Series([["a", "b"], None, ("c", "c"), []]), s, metadata, "s")
    assert rows_of(ragged) == [[2, 3], [], [4], []]


def test_lowercase_most_common_and_min_frequency():
    column = pd.Series(["A b", "a B", "a c", "d"])
    assert fitted(column, lowercase=True)[1]["vocab"] == [PAD, UNKNOWN, "a", "b", "c", "d"]
    assert fitted(column, lowercase=True, most_common=2)[1]["vocab"] == [PAD, UNKNOWN, "a", "b"]
    assert fitted(column, lowercase=True, min_frequency=2)[1]["vocab"] == [PAD, UNKNOWN, "a", "b"]


def test_fill_value_replaces_missing_cells():
    s, metadata = fitted(fill_value="d")
    assert metadata["vocab"] == [PAD, UNKNOWN, "b", "d", "a", "c"]  # the two missing training rows hold d too
    assert rows_of(SetFeature.transform(pd.Series([None, ""]), s, metadata, "s")) == [[3], [3]]


def test_every_value_missing_in_training_is_an_error():
    with pytest.raises(DataError, match="set feature 's': every value in the training split is missing"):
        SetFeature.fit(pd.Series([None, " "]), settings(), "s")


def test_metric_target_is_multi_hot_without_the_pad_column():
    _, metadata = fitted()
    target = SetFeature.metric_target(torch.tensor([[2, 3], [1, 0], [0, 0]]), metadata)
    assert target.tolist() == [[False, False, True, True, False, False], [False, True, False, False, False, False],
                               [False] * 6]


def test_predict_thresholds_sigmoid_probabilities_and_never_predicts_pad():
    _, metadata = fitted()
    logits = torch.tensor([[5.0, -1.0, 0.5, -0.5, 2.0, -3.0]])
    outputs = SetFeature.predict(logits, metadata, {"threshold": 0.5})
    assert outputs["predictions"].tolist() == [[False, False, True, False, True, False]]
    torch.testing.assert_close(outputs["probabilities"], torch.sigmoid(logits))
    assert SetFeature.predict(logits, metadata, {"threshold": 0.9})["predictions"].tolist() == [[False, False, False,
                                                                                               False, False, False]]
    assert SetFeature.predict(logits, metadata, {})["predictions"].sum() == 2  # threshold 0.5 by default


def test_postprocess_round_trips_predictions_to_label_lists():
    s, metadata = fitted()
    column = pd.Series(["a b", "", "c d a", "b"])
    target = torch.from_numpy(SetFeature.transform(column, s, metadata, "s").padded())
    hot = SetFeature.metric_target(target, metadata)
    logits = torch.where(hot, 4.0, -4.0)  # a model that is right about every label
    outputs = {k: v.numpy() for k, v in SetFeature.predict(logits, metadata, {}).items()}
    columns = SetFeature.postprocess(outputs, metadata, "y")
    assert [sorted(labels) for labels in columns["y_predictions"]] == [["a", "b"], [], ["a", "c", "d"], ["b"]]
    assert f"y_probabilities_{PAD}" not in columns
    np.testing.assert_allclose(columns["y_probabilities_c"], torch.sigmoid(logits[:, 4]).numpy())
    assert pd.DataFrame(columns).shape == (4, 6)  # predictions and one column per label, <UNK> included


def test_postprocess_of_rows_with_equal_counts_gives_lists():
    _, metadata = fitted()
    predictions = np.zeros((2, 6), dtype=bool)
    predictions[:, 2] = True
    columns = SetFeature.postprocess({"predictions": predictions, "probabilities": predictions * 1.0}, metadata, "y")
    assert list(columns["y_predictions"]) == [["b"], ["b"]]
