"""Splitting rows into train / validation / test: random, fixed and stratified."""
import numpy as np
import pandas as pd
import pytest

from framework.data.split import split_rows
from framework.errors import DataError


def random_settings(probabilities=(0.7, 0.1, 0.2)) -> dict:
    return {"type": "random", "probabilities": list(probabilities), "column": None}


@pytest.mark.parametrize("probabilities", [(0.7, 0.1, 0.2), (0.5, 0.25, 0.25), (1.0, 0.0, 0.0)])
def test_random_split_proportions_are_exact(probabilities):
    frame = pd.DataFrame({"x": range(1000)})
    assignment = split_rows(frame, random_settings(probabilities), seed=0)
    counts = np.bincount(assignment, minlength=3)
    np.testing.assert_array_equal(counts, np.round(np.array(probabilities) * 1000))


def test_random_split_is_a_function_of_the_seed():
    frame = pd.DataFrame({"x": range(200)})
    first = split_rows(frame, random_settings(), seed=5)
    np.testing.assert_array_equal(first, split_rows(frame, random_settings(), seed=5))
    assert not np.array_equal(first, split_rows(frame, random_settings(), seed=6))


def test_fixed_split_reads_numbers_and_names():
    frame = pd.DataFrame({"split": [0, 1, 2, "train", " Validation", "TEST", "val", "training"]})
    assignment = split_rows(frame, {"type": "fixed", "probabilities": [0.7, 0.1, 0.2], "column": "split"}, seed=0)
    np.testing.assert_array_equal(assignment, [0, 1, 2, 0, 1, 2, 1, 0])


def test_fixed_split_rejects_other_values_with_examples():
    frame = pd.DataFrame({"split": ["train", "dev", "holdout", "test"]})
    with pytest.raises(DataError) as caught:
        split_rows(frame, {"type": "fixed", "probabilities": [0.7, 0.1, 0.2], "column": "split"}, seed=0)
    assert "split column 'split': 2 rows have values other than" in str(caught.value)
    assert "['dev', 'holdout']" in str(caught.value)


def test_stratified_split_keeps_label_proportions_in_each_split():
    labels = np.array(["a"] * 800 + ["b"] * 200)
    frame = pd.DataFrame({"y": labels})
    settings = {"type": "stratify", "probabilities": [0.5, 0.25, 0.25], "column": "y"}
    assignment = split_rows(frame, settings, seed=1)
    for split, size in enumerate([500, 250, 250]):
        chosen = labels[assignment == split]
        assert len(chosen) == size
        assert (chosen == "b").sum() == size // 5  # exactly 20% in every split


def test_stratified_split_groups_missing_labels_together():
    frame = pd.DataFrame({"y": ["a", None, "a", None] * 5})
    settings = {"type": "stratify", "probabilities": [0.6, 0.2, 0.2], "column": "y"}
    assignment = split_rows(frame, settings, seed=0)
    missing = frame["y"].isna().to_numpy()
    np.testing.assert_array_equal(np.bincount(assignment[missing], minlength=3), [6, 2, 2])
