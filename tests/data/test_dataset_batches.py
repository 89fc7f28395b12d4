"""Batching a split: every row exactly once per pass, in the requested order, batch sizes as promised."""
import numpy as np
import pytest

from framework.data import dataset as dataset_module
from framework.data.dataset import ArrayDataset


def _rows_seen(dataset, batch_size, order=None, **kwargs):
    batches = list(dataset.batches(batch_size, order, **kwargs))
    return [len(b["x"]) for b in batches], np.concatenate([b["x"].numpy() for b in batches])


@pytest.mark.parametrize("rows, batch_size", [(65, 64), (129, 64), (10, 3), (7, 7), (1, 4), (100, 10)])
@pytest.mark.parametrize("chunk_bytes", [8, 64, 1 << 20])
def test_fold_single_row_keeps_every_row_and_never_yields_one(monkeypatch, rows, batch_size, chunk_bytes):
    monkeypatch.setattr(dataset_module, "CHUNK_BYTES", chunk_bytes)
    data = ArrayDataset({"x": np.arange(rows, dtype=np.int64)})
    order = np.random.default_rng(0).permutation(rows)
    sizes, seen = _rows_seen(data, batch_size, order, fold_single_row=True)
    np.testing.assert_array_equal(seen, order)
    assert len(sizes) == data.num_batches(batch_size, fold_single_row=True)
    assert rows == 1 or min(sizes) > 1
    assert max(sizes) <= batch_size + 1


def test_without_folding_batches_are_plain_slices():
    data = ArrayDataset({"x": np.arange(65, dtype=np.int64)})
    sizes, seen = _rows_seen(data, 64)
    assert sizes == [64, 1] and data.num_batches(64) == 2
    np.testing.assert_array_equal(seen, np.arange(65))


def test_start_skips_whole_batches():
    data = ArrayDataset({"x": np.arange(10, dtype=np.int64)})
    sizes, seen = _rows_seen(data, 3, start=2, fold_single_row=True)
    assert sizes == [4] and list(seen) == [6, 7, 8, 9]
