"""Variable-length rows (token ids, time series) as one flat array plus offsets: Arrow's list layout.

Rows are gathered with vectorized index arithmetic, never a Python loop over rows, and padded only
when a batch is made, to the longest row of that batch rather than of the dataset.
"""
from __future__ import annotations

import numpy as np


class Ragged:
    def __init__(self, values: np.ndarray, offsets: np.ndarray, pad_value: float | int = 0, pad_left: bool = False):
        self.values = values
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.pad_value = pad_value
        self.pad_left = pad_left  # padding before each row's start (what a causal model reading the end wants)

    @classmethod
    def from_lengths(cls, values: np.ndarray, lengths: np.ndarray, pad_value: float | int = 0,
                     pad_left: bool = False) -> "Ragged":
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(values, offsets, pad_value, pad_left)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        return int(self.values[self.offsets[0]:self.offsets[-1]].nbytes + self.offsets.nbytes)

    def __getitem__(self, rows) -> "Ragged":
        if isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(len(self))
            stop = max(start, stop)
            offsets = self.offsets[start:stop + 1]
            return Ragged(self.values[offsets[0]:offsets[-1]], offsets - offsets[0], self.pad_value, self.pad_left)
        rows = np.asarray(range(len(self))[rows] if isinstance(rows, slice) else rows, dtype=np.int64)
        lengths = self.lengths[rows]
        result = Ragged.from_lengths(self.values[:0], lengths, self.pad_value, self.pad_left)
        total = int(result.offsets[-1])
        # the source position of each output element: its row's start plus its place in the row
        shift = np.repeat(self.offsets[rows] - result.offsets[:-1], lengths)
        result.values = self.values[shift + np.arange(total, dtype=np.int64)]
        return result

    def padded(self) -> np.ndarray:
        """[rows, longest row] filled with pad_value after each row's end, or before its start with
        pad_left (at least one column).

        Rows are truncated at preprocessing (each feature's max length), not here.
        """
        lengths = self.lengths
        width = max(1, int(lengths.max(initial=0)))
        out = np.full((len(self), width, *self.values.shape[1:]), self.pad_value, dtype=self.values.dtype)
        columns = np.arange(width)
        real = columns >= (width - lengths)[:, None] if self.pad_left else columns < lengths[:, None]
        out[real] = self.values[self.offsets[0]:self.offsets[-1]]
        return out
