"""What every multi-process strategy does alike: each process trains on its own rows, training sums
are added up across processes, and only the main process writes.

Each epoch's permutation (the same on every process: a pure function of seed and epoch) is padded by
wrapping to a multiple of the process count and dealt out round-robin, so the processes' rows are
disjoint (but for the few padding rows), equally many, and together one batch of k processes x b rows
holds exactly the rows of one batch of k*b rows on one process: the runs line up step for step.
"""
from __future__ import annotations

import numpy as np
import torch

from framework.data.dataset import ArrayDataset
from framework.training import distributed


class Shards:
    def __init__(self):
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.is_main = self.rank == 0

    def epoch_rows(self, train: ArrayDataset, order: np.ndarray) -> tuple[ArrayDataset, None]:
        """This process's rows, gathered once per epoch into a split of their own, read in order (the same
        one gather per column that reading them through the permutation would cost)."""
        if self.world_size == 1:
            return train, order
        rows = self.rows_per_process(len(order))
        padded = np.resize(order, rows * self.world_size)  # wraps around: the first rows again
        mine = padded[self.rank::self.world_size]
        return ArrayDataset({name: column[mine] for name, column in train.columns.items()}), None

    def rows_per_process(self, rows: int) -> int:
        return -(-rows // self.world_size)

    def all_sum(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        return distributed.all_sum(tensors)

    def all_finite(self, loss: torch.Tensor) -> bool:
        """Every process's loss is finite (decided together, or one would skip a step the others take)."""
        return distributed.all_true(bool(torch.isfinite(loss).item()), loss.device)

    def barrier(self) -> None:
        distributed.barrier()
