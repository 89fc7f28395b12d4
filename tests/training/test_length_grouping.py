"""trainer.group_by_length: each epoch's batches hold rows of similar length (less padding), every row is
still read once an epoch, the batches come in random order, and a resumed run reads the same batches."""
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import torch

from framework.training import checkpoints
from framework import Model
from framework.data.dataset import ArrayDataset
from framework.data.ragged import Ragged
from framework.training.length_grouping import WINDOW_BATCHES, grouped_order, row_lengths


def texts(n: int, seed: int = 0) -> pd.DataFrame:
    """Lengths from 1 to 60 words; the label is whether 'good' is among them."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = list(rng.choice([f"w{k}" for k in range(20)], size=int(rng.integers(1, 60))))
        if i % 2:
            words.insert(int(rng.integers(0, len(words) + 1)), "good")
        rows.append({"review": " ".join(words), "label": bool(i % 2)})
    return pd.DataFrame(rows)


def config(**trainer) -> dict:
    return {"input_features": [{"name": "review", "type": "text", "encoder": {"type": "embed"}}],
            "output_features": [{"name": "label", "type": "binary"}],
            "trainer": {"epochs": 6, "batch_size": 16, "learning_rate": 0.01, "progress_bar": False,
                        "early_stop": 0, "device": "cpu", **trainer}}


def test_grouped_batches_are_a_permutation_of_similar_lengths_in_random_order():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=1003)
    order = rng.permutation(1003)
    grouped = grouped_order(order, lengths, 8, np.random.default_rng(1))
    assert sorted(grouped) == list(range(1003))
    full = grouped[:1000].reshape(-1, 8)
    assert set(grouped[1000:]) <= set(order[-8 * WINDOW_BATCHES:])  # the 3 left over stay last, from the last window
    padded = lambda rows: lengths[rows].max() * len(rows)  # noqa: E731 - tokens a batch-max padded batch holds
    ungrouped = sum(padded(order[i:i + 8]) for i in range(0, 1003, 8))
    assert sum(padded(rows) for rows in full) + padded(grouped[1000:]) < 0.6 * ungrouped
    # each batch comes from one window of the permutation, and the batches are not in length order
    window = {row: position // (8 * WINDOW_BATCHES) for position, row in enumerate(order)}
    assert all(len({window[row] for row in rows}) == 1 for rows in full)
    longest = [lengths[rows].max() for rows in full]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)
    np.testing.assert_array_equal(grouped, grouped_order(order, lengths, 8, np.random.default_rng(1)))


def test_row_lengths_are_the_longest_variable_length_value_of_each_row():
    a = Ragged.from_lengths(np.zeros(9), np.array([2, 5, 2]))
    b = Ragged.from_lengths(np.zeros(7), np.array([4, 1, 2]))
    data = ArrayDataset({"a": a, "b": b, "x": np.zeros(3)})
    np.testing.assert_array_equal(row_lengths(data, ["a", "b", "x"]), [4, 5, 2])
    assert row_lengths(data, ["x"]) is None


def padded_widths(frame: pd.DataFrame, **trainer) -> tuple[list[tuple[int, int]], Model]:
    """The [rows, width] of every training batch's text tensor."""
    seen = []
    real = ArrayDataset.batches

    def recording(self, *args, **kwargs):
        for batch in real(self, *args, **kwargs):
            if torch.is_grad_enabled():  # training batches, not evaluation
                seen.append(tuple(batch["review"].shape))
            yield batch

    model = Model(config(**trainer))
    with mock.patch.object(ArrayDataset, "batches", recording):
        model.train(frame, output_dir=None)
    return seen, model


def test_grouping_pads_less_and_learns_as_well():
    frame = texts(600)
    plain, plain_model = padded_widths(frame)
    grouped, grouped_model = padded_widths(frame, group_by_length=True)
    assert sum(r for r, _ in grouped) == sum(r for r, _ in plain)  # every row, every epoch
    assert sum(r * w for r, w in grouped) < 0.7 * sum(r * w for r, w in plain)
    test = texts(200, seed=1)
    accuracy = lambda model: (model.predict(test)["label_predictions"] == test["label"]).mean()  # noqa: E731
    assert accuracy(grouped_model) >= 0.9 and accuracy(plain_model) >= 0.9


class Interrupted(Exception):
    pass


def test_a_grouped_run_resumed_mid_epoch_ends_as_an_uninterrupted_one(tmp_path):
    frame = texts(200)
    settings = {"group_by_length": True, "steps_per_checkpoint": 4, "epochs": 3}
    reference = Model(config(**settings))
    reference_result = reference.train(frame, output_dir=tmp_path / "whole")
    real, written = checkpoints.save_checkpoint, []

    def save_then_stop(*args, **kwargs):
        real(*args, **kwargs)
        written.append(1)
        if len(written) == 2:  # at step 8, inside the first epoch (about 9 batches of 16 rows an epoch)
            raise Interrupted

    with mock.patch.object(checkpoints, "save_checkpoint", save_then_stop), pytest.raises(Interrupted):
        Model(config(**settings)).train(frame, output_dir=tmp_path / "cut")
    resumed = Model(config(**settings))
    result = resumed.train(frame, output_dir=tmp_path / "cut", resume=True)
    assert result.training_statistics == reference_result.training_statistics
    for name, value in reference.module.state_dict().items():
        torch.testing.assert_close(resumed.module.state_dict()[name], value, rtol=0, atol=0)
