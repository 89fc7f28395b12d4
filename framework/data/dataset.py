"""A preprocessed split: one contiguous numpy array per feature, batched by index slices.

No per-row __getitem__ and no collate of Python objects: a batch is a slice (or one gather by a
permutation drawn once per epoch) and a `torch.from_numpy`.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch


class ArrayDataset:
    def __init__(self, columns: dict[str, np.ndarray]):
        lengths = {len(array) for array in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: { {k: len(v) for k, v in columns.items()} }")
        self.columns = columns
        self._length = lengths.pop() if lengths else 0

    def __len__(self) -> int:
        return self._length

    def num_batches(self, batch_size: int) -> int:
        return -(-self._length // batch_size)

    def batches(self, batch_size: int, order: np.ndarray | None = None, start: int = 0,
                names: list[str] | None = None, device: torch.device | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Batches from batch number `start` on, in `order` when given (a permutation of the rows)."""
        names = list(self.columns) if names is None else names
        pin = device is not None and device.type == "cuda"
        for begin in range(start * batch_size, self._length, batch_size):
            rows = slice(begin, begin + batch_size) if order is None else order[begin: begin + batch_size]
            batch = {}
            for name in names:
                tensor = torch.from_numpy(np.ascontiguousarray(self.columns[name][rows]))
                if pin:  # pinned host memory lets the copy overlap with compute
                    tensor = tensor.pin_memory().to(device, non_blocking=True)
                elif device is not None and device.type != "cpu":
                    tensor = tensor.to(device)
                batch[name] = tensor
            yield batch
