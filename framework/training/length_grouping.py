"""`trainer.group_by_length`: batches of rows of similar length, so a batch padded to its own longest row
carries little padding.

The epoch's random permutation is cut into windows of WINDOW_BATCHES batches; each window is sorted by row
length and cut into batches, and the full batches are shuffled across the whole epoch (a batch's rows are
then alike in length, while the order of lengths stays random, so the loss sees no trend over an epoch).
The short remainder batch stays last, as in an ungrouped epoch. Everything follows from the seed and the
epoch, so a resumed run reads the same batches. Under several processes the unit is the global batch
(batch_size x processes): each process's share of it is interleaved from it, so all processes' batches
are alike too.
"""
from __future__ import annotations

import numpy as np

from framework.data.dataset import ArrayDataset
from framework.data.ragged import Ragged

WINDOW_BATCHES = 64  # how far a row can move: wide enough to find similar lengths, narrow enough to stay random


def row_lengths(dataset: ArrayDataset, names: list[str]) -> np.ndarray | None:
    """Each row's longest variable-length value among `names` (None when no column is variable-length)."""
    lengths = [dataset.columns[name].lengths for name in names if isinstance(dataset.columns[name], Ragged)]
    return np.maximum.reduce(lengths) if lengths else None


def grouped_order(order: np.ndarray, lengths: np.ndarray, batch: int, rng: np.random.Generator) -> np.ndarray:
    """`order` rearranged into batches of `batch` rows of similar length, the batches in random order."""
    window = batch * WINDOW_BATCHES
    parts = [chunk[np.argsort(-lengths[chunk], kind="stable")]
             for chunk in (order[start:start + window] for start in range(0, len(order), window))]
    ordered = np.concatenate(parts) if parts else order
    full = len(ordered) // batch * batch
    batches = ordered[:full].reshape(-1, batch)[rng.permutation(full // batch)]
    return np.concatenate([batches.reshape(-1), ordered[full:]])
