"""Ragged rows: gathers and padding against a per-row reference, and the cache round trip."""
import numpy as np
import pytest

from framework.data import cache
from framework.data.dataset import ArrayDataset
from framework.data.ragged import Ragged


@pytest.fixture
def rows():
    rng = np.random.default_rng(0)
    return [rng.integers(1, 50, size=rng.integers(0, 9)).astype(np.int32) for _ in range(37)]


def _ragged(rows, pad=0):
    return Ragged.from_lengths(np.concatenate(rows), np.array([len(r) for r in rows]), pad)


def _padded_reference(rows, pad):
    width = max(1, max(len(r) for r in rows))
    return np.array([np.concatenate([r, np.full(width - len(r), pad, dtype=np.int32)]) for r in rows])


@pytest.mark.parametrize("selection", [slice(0, 37), slice(5, 11), slice(30, 30), [3, 1, 36, 3], np.arange(37)[::-1]])
def test_gather_then_pad_matches_row_by_row(rows, selection):
    picked = rows[selection] if isinstance(selection, slice) else [rows[i] for i in selection]
    result = _ragged(rows)[selection]
    assert len(result) == len(picked)
    if picked:
        np.testing.assert_array_equal(result.padded(), _padded_reference(picked, 0))


def test_pads_to_the_batch_maximum_not_the_dataset_maximum():
    data = ArrayDataset({"t": _ragged([np.array([1, 2], np.int32), np.array([3], np.int32),
                                       np.array([4, 5, 6, 7, 8], np.int32)])})
    shapes = [tuple(batch["t"].shape) for batch in data.batches(2)]
    assert shapes == [(2, 2), (1, 5)]


def test_cache_round_trip_keeps_ragged_columns(tmp_path, rows):
    arrays = {"train": {"t": _ragged(rows, pad=-1), "x": np.arange(37, dtype=np.float32)}}
    cache.save(tmp_path, "k", arrays, {"meta": 1})
    loaded, metadata = cache.load(tmp_path, "k")
    restored = loaded["train"]["t"]
    assert isinstance(restored, Ragged) and restored.pad_value == -1
    np.testing.assert_array_equal(restored.padded(), _padded_reference(rows, -1))
    np.testing.assert_array_equal(loaded["train"]["x"], np.arange(37, dtype=np.float32))


def test_left_padding_puts_pads_before_each_row_and_survives_gathers_and_the_cache(tmp_path):
    ragged = Ragged.from_lengths(np.array([1, 2, 3, 4, 5, 6], np.int64), np.array([2, 0, 4]), pad_value=9,
                                 pad_left=True)
    expected = np.array([[9, 9, 1, 2], [9, 9, 9, 9], [3, 4, 5, 6]])
    np.testing.assert_array_equal(ragged.padded(), expected)
    np.testing.assert_array_equal(ragged[[2, 0]].padded(), expected[[2, 0]])
    np.testing.assert_array_equal(ragged[0:1].padded(), [[1, 2]])
    cache.save(tmp_path, "k", {"train": {"t": ragged}}, {})
    restored = cache.load(tmp_path, "k")[0]["train"]["t"]
    assert restored.pad_left
    np.testing.assert_array_equal(restored.padded(), expected)


def test_rows_of_several_values_each_pad_and_round_trip(tmp_path):
    """A bag's rows are (id, count) pairs: padding adds whole (pad, pad) pairs."""
    pairs = np.array([[5, 2], [7, 1], [3, 4]], np.int64)
    ragged = Ragged.from_lengths(pairs, np.array([2, 1]))
    expected = np.array([[[5, 2], [7, 1]], [[3, 4], [0, 0]]])
    np.testing.assert_array_equal(ragged.padded(), expected)
    cache.save(tmp_path, "k", {"train": {"b": ragged}}, {})
    restored = cache.load(tmp_path, "k")[0]["train"]["b"]
    assert restored.values.shape == (3, 2)
    np.testing.assert_array_equal(restored.padded(), expected)
