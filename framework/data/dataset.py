"""A preprocessed split: one contiguous numpy array per feature, batched by index slices.

No per-row __getitem__ and no collate of Python objects. Rows are gathered a chunk of batches at a
time (one fancy-index per column for the whole chunk, in the order of the permutation drawn once
per epoch); each batch is then a zero-copy slice of the chunk's tensors.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from framework.data.ragged import Ragged

# Bytes gathered per chunk: large enough that the per-call cost of a gather and a host-to-device copy
# is paid once per thousands of tabular batches, small enough that a chunk of long token sequences
# never doubles the memory a split takes.
CHUNK_BYTES = 64 << 20


def batch_count(rows: int, batch_size: int, fold_single_row: bool = False) -> int:
    """Batches of `rows` rows; with `fold_single_row`, a last batch of one row joins the one before it."""
    count = -(-rows // batch_size)
    return count - 1 if fold_single_row and _folds(rows, batch_size) else count


def _folds(rows: int, batch_size: int) -> bool:
    return rows > batch_size and rows % batch_size == 1


class ArrayDataset:
    def __init__(self, columns: dict[str, np.ndarray | Ragged]):
        lengths = {len(array) for array in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: { {k: len(v) for k, v in columns.items()} }")
        self.columns = columns
        self._length = lengths.pop() if lengths else 0

    def __len__(self) -> int:
        return self._length

    def num_batches(self, batch_size: int, fold_single_row: bool = False) -> int:
        return batch_count(self._length, batch_size, fold_single_row)

    def _folds(self, batch_size: int) -> bool:
        return _folds(self._length, batch_size)

    def chunk_rows(self, batch_size: int, names: list[str]) -> int:
        """Rows per gathered chunk: a whole number of batches within CHUNK_BYTES (at least one batch)."""
        row_bytes = sum(self.columns[name].nbytes for name in names) // max(1, self._length) or 1
        return batch_size * max(1, CHUNK_BYTES // (row_bytes * batch_size))

    def batches(self, batch_size: int, order: np.ndarray | None = None, start: int = 0,
                names: list[str] | None = None, device: torch.device | None = None,
                fold_single_row: bool = False) -> Iterator[dict[str, torch.Tensor]]:
        """Batches from batch number `start` on, in `order` when given (a permutation of the rows).

        With `fold_single_row`, a last batch of one row joins the batch before it: batch norm cannot
        train on one row, and dropping it would lose a row each epoch.
        """
        names = list(self.columns) if names is None else names
        fold = fold_single_row and self._folds(batch_size)
        step = self.chunk_rows(batch_size, names)
        begin = start * batch_size
        while begin < self._length:
            end = min(begin + step, self._length)
            if fold and self._length - end == 1:
                end = self._length
            rows = slice(begin, end) if order is None else order[begin:end]
            chunk = {name: _gather(self.columns[name], rows, device) for name in names}
            size = end - begin
            offset = 0
            while offset < size:
                stop = size if fold and size - (offset + batch_size) == 1 else offset + batch_size
                yield {name: _slice(value, offset, stop, device) for name, value in chunk.items()}
                offset = stop
            begin = end


def _gather(column: np.ndarray | Ragged, rows, device: torch.device | None) -> torch.Tensor | Ragged:
    """A chunk's rows: dense columns become a tensor at once; ragged ones (and deferred ones, such as
    image paths decoded per batch) stay as they are until a batch is cut."""
    return _tensor(column[rows], device) if isinstance(column, np.ndarray) else column[rows]


def _slice(value: torch.Tensor | Ragged, start: int, stop: int, device: torch.device | None) -> torch.Tensor:
    """One batch of a chunk; ragged rows are padded to this batch's longest row, deferred ones made
    by their own `padded()`."""
    if isinstance(value, torch.Tensor):
        return value[start:stop]
    return _tensor(value[start:stop].padded(), device)


def _tensor(array: np.ndarray, device: torch.device | None) -> torch.Tensor:
    """The chunk as a tensor on `device`: zero-copy on the CPU; on a GPU one copy from pinned memory
    per chunk, so each batch is a slice already on the device."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device is None or device.type == "cpu":
        return tensor
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
