"""Image columns too large to decode into memory: paths kept, pixels decoded per batch in the background.

`LazyImages` stands in an `ArrayDataset` where an array would: the dataset gathers a chunk of rows
(`images[rows]`, in the epoch's order) and cuts batches from it (`chunk[a:b].padded()`, the name
ArrayDataset gives a deferred column's batch array). A chunk starts decoding its first rows in a
thread pool the moment it is gathered, and keeps a few pieces ahead of the batch being read, so the
next batch is being decoded while the model trains on this one; memory holds only those pieces.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from framework.data.image_io import ImageSpec, decode_into, workers

logger = logging.getLogger("framework.data")

PIECE_ROWS = 32  # rows decoded by one task: large enough to amortise a task, small for an early first batch


class LazyImages:
    """A column of image file paths ('' where the image is missing) decoded to uint8 [C, H, W] on demand."""

    def __init__(self, paths: np.ndarray, spec: ImageSpec, name: str, ahead: int | None = None):
        self.paths = paths
        self.spec = spec
        self.name = name
        self.ahead = ahead if ahead is not None else 2 * workers()  # pieces decoding ahead of the reader
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.unreadable: dict[str, str] = {}  # path -> why, for files that opened at preprocessing but not now

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def nbytes(self) -> int:
        """The decoded size, which is what a gathered chunk holds (ArrayDataset sizes chunks by it)."""
        return len(self.paths) * self.spec.row_bytes

    def __getitem__(self, rows) -> "_Chunk":
        return _Chunk(self, self.paths[rows])

    def decode(self, paths: np.ndarray) -> np.ndarray:
        out = np.empty((len(paths), self.spec.num_channels, self.spec.height, self.spec.width), dtype=np.uint8)
        bad = decode_into([p if p else None for p in paths], out, self.spec, None)
        if bad:
            self._report(paths, bad)
        return out

    def _report(self, paths: np.ndarray, bad: dict[int, str]) -> None:
        with self._lock:
            first = not self.unreadable
            for position, why in bad.items():
                self.unreadable[str(paths[position])] = why
        if first:  # said once per column; every later one is counted in `unreadable`
            position, why = next(iter(bad.items()))
            logger.warning("image feature '%s': %s could not be decoded while training (%s) and reads as zeros; "
                           "any other such file is counted in LazyImages.unreadable", self.name, paths[position], why)

    def submit(self, paths: np.ndarray) -> Future:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(workers(), thread_name_prefix=f"images-{self.name}")
        return self._pool.submit(self.decode, paths)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __getstate__(self) -> dict:  # a pool cannot be pickled (DataLoader workers, DDP spawn)
        return {**self.__dict__, "_pool": None, "_lock": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class _Chunk:
    """The rows of one gathered chunk, decoded a piece at a time, a window of pieces ahead of the reader."""

    def __init__(self, images: LazyImages, paths: np.ndarray):
        self.images = images
        self.paths = paths
        self.count = -(-len(paths) // PIECE_ROWS)
        self.futures: dict[int, Future] = {}
        self.submitted = 0
        self._submit_until(images.ahead)

    def __len__(self) -> int:
        return len(self.paths)

    def _submit_until(self, piece: int) -> None:
        while self.submitted < min(piece, self.count):
            start = self.submitted * PIECE_ROWS
            self.futures[self.submitted] = self.images.submit(self.paths[start:start + PIECE_ROWS])
            self.submitted += 1

    def rows(self, start: int, stop: int) -> np.ndarray:
        first, last = start // PIECE_ROWS, (max(stop, start + 1) - 1) // PIECE_ROWS
        self._submit_until(last + 1 + self.images.ahead)
        for done in [i for i in self.futures if i < first]:  # the reader has moved past them
            del self.futures[done]
        pieces = [self.futures[i].result() for i in range(first, last + 1)]
        joined = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        offset = first * PIECE_ROWS
        return joined[start - offset:stop - offset]

    def __getitem__(self, rows: slice) -> "_Rows":
        start, stop, _ = rows.indices(len(self.paths))
        return _Rows(self, start, stop)

    def __del__(self) -> None:
        for future in self.futures.values():
            future.cancel()


class _Rows:
    """One batch of a chunk, decoded when asked for."""

    def __init__(self, chunk: _Chunk, start: int, stop: int):
        self.chunk, self.start, self.stop = chunk, start, stop

    def padded(self) -> np.ndarray:
        """uint8 [B, C, H, W] (all images have one size, so nothing is padded: the name is the one
        ArrayDataset calls on every deferred column)."""
        return self.chunk.rows(self.start, self.stop)
