"""From raw data to preprocessed splits: column checks, sampling, splitting, dropping, fitting on train."""
import numpy as np
import pandas as pd
import pytest

from framework.config import load_config
from framework.data.pipeline import prepare_inference, prepare_training
from framework.errors import DataError


def config(**extra) -> dict:
    raw = {"input_features": [{"name": "x", "type": "number"}, {"name": "color", "type": "category"}],
           "output_features": [{"name": "label", "type": "binary"}]}
    return load_config({**raw, **extra})


def test_a_missing_column_lists_the_columns_present(make_frame, tmp_path):
    frame = make_frame(50).rename(columns={"color": "colour"})
    with pytest.raises(DataError) as caught:
        prepare_training(config(), frame, cache_dir=tmp_path)
    message = str(caught.value)
    assert "column 'color' of feature 'color' is not in the dataset; did you mean 'colour'?" in message
    assert "(columns present: x, z, colour, flag, label, amount, tier)" in message


def test_a_missing_column_without_a_close_name(make_frame, tmp_path):
    frame = make_frame(50).drop(columns=["color"])
    with pytest.raises(DataError, match=r"is not in the dataset \(columns present: x, z, flag,"):
        prepare_training(config(), frame, cache_dir=tmp_path)


def test_a_missing_column_in_the_validation_dataset_says_so(make_frame, tmp_path):
    with pytest.raises(DataError, match="is not in the validation dataset"):
        prepare_training(config(), make_frame(50), validation=make_frame(20).drop(columns=["x"]), cache_dir=tmp_path)


def test_an_empty_dataset(make_frame, tmp_path):
    with pytest.raises(DataError, match=r"the dataset is empty \(0 rows\)"):
        prepare_training(config(), make_frame(50).iloc[:0], cache_dir=tmp_path)


def test_an_output_column_with_every_value_missing(make_frame, tmp_path):
    frame = make_frame(50).assign(label=None)
    with pytest.raises(DataError, match="column 'label' of output feature 'label' has no values in the dataset: "
                                        "all 50 rows are missing"):
        prepare_training(config(), frame, cache_dir=tmp_path)


def test_rows_missing_a_target_are_dropped_and_inputs_are_filled(make_frame, tmp_path):
    frame = make_frame(100).astype({"label": object, "x": float})
    frame.loc[:9, "label"] = None  # 10 rows without a target
    frame.loc[10:19, "x"] = np.nan  # 10 rows without an input value: filled, kept
    prepared = prepare_training(config(preprocessing={"split": {"probabilities": [1.0, 0.0, 0.0]}}), frame,
                                cache_dir=tmp_path)
    train = prepared.splits["train"]
    assert len(train) == 90
    assert not np.isnan(train.columns["x"]).any()


def test_metadata_is_fitted_on_the_training_split_only(make_frame, tmp_path):
    train = make_frame(60, seed=1)
    validation = make_frame(40, seed=2).assign(x=1000.0, color="purple")
    prepared = prepare_training(config(), train, validation=validation, cache_dir=tmp_path)
    assert prepared.metadata["x"]["mean"] == pytest.approx(train["x"].mean())
    assert "purple" not in prepared.metadata["color"]["vocab"]
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 60, "validation": 40, "test": 0}
    np.testing.assert_array_equal(prepared.splits["validation"].columns["color"], 0)  # unseen: <UNK>


def test_the_configured_split_proportions(make_frame, tmp_path):
    prepared = prepare_training(config(), make_frame(200), cache_dir=tmp_path)
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 140, "validation": 20, "test": 40}


def test_a_fixed_split_column_need_not_be_a_feature(make_frame, tmp_path):
    frame = make_frame(30).assign(fold=["train"] * 20 + ["validation"] * 4 + ["test"] * 6)
    prepared = prepare_training(config(preprocessing={"split": {"type": "fixed", "column": "fold"}}), frame,
                                cache_dir=tmp_path)
    assert {name: len(split) for name, split in prepared.splits.items()} == {"train": 20, "validation": 4, "test": 6}


def test_a_missing_fixed_split_column(make_frame, tmp_path):
    with pytest.raises(DataError, match="column 'fold' of feature 'split' is not in the dataset"):
        prepare_training(config(preprocessing={"split": {"type": "fixed", "column": "fold"}}), make_frame(30),
                         cache_dir=tmp_path)


@pytest.mark.parametrize("preprocessing, rows", [({"sample_size": 50}, 50), ({"sample_ratio": 0.25}, 100)])
def test_sampling(make_frame, tmp_path, preprocessing, rows):
    settings = {**preprocessing, "split": {"probabilities": [1.0, 0.0, 0.0]}}
    prepared = prepare_training(config(preprocessing=settings), make_frame(400), cache_dir=tmp_path)
    assert len(prepared.splits["train"]) == rows


def test_an_empty_training_split(make_frame, tmp_path):
    frame = make_frame(10).assign(fold="test")
    with pytest.raises(DataError, match="the training split is empty"):
        prepare_training(config(preprocessing={"split": {"type": "fixed", "column": "fold"}}), frame,
                         cache_dir=tmp_path)


def test_inference_keeps_row_order_and_index(make_frame, tmp_path):
    frame = make_frame(30)
    prepared = prepare_training(config(), frame, cache_dir=tmp_path)
    shuffled = frame.sample(frac=1.0, random_state=0).set_index(pd.Index(range(100, 130)))
    arrays, index = prepare_inference(config(), prepared.metadata, shuffled, with_targets=False)
    assert list(index) == list(range(100, 130))
    expected = (shuffled["x"] - prepared.metadata["x"]["mean"]) / prepared.metadata["x"]["std"]
    np.testing.assert_allclose(arrays.columns["x"], expected, rtol=1e-5)
    assert "label" not in arrays.columns


def test_inference_with_targets_drops_rows_missing_one(make_frame, tmp_path):
    frame = make_frame(30).astype({"label": object})
    prepared = prepare_training(config(), frame, cache_dir=tmp_path)
    frame.loc[[3, 7], "label"] = None
    arrays, index = prepare_inference(config(), prepared.metadata, frame, with_targets=True)
    assert len(arrays) == 28 and 3 not in index and 7 not in index
    with pytest.raises(DataError, match="every row of the dataset is missing a value of an output feature"):
        prepare_inference(config(), prepared.metadata, frame.assign(label=None), with_targets=True)
