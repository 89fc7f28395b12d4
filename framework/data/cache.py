"""On-disk cache of preprocessed splits, keyed by a hash of the data and of every setting used.

A DataFrame or file passed twice with the same config hits the cache; any change to the data's
content, the preprocessing settings or the framework version misses it. Each entry records the
checksum of its files, so a corrupt or partial entry is detected and rebuilt, never used.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from framework import atomic
from framework.data.ragged import Ragged
from framework.version import __version__

FORMAT = 2


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("FRAMEWORK_CACHE_DIR") or Path.home() / ".cache" / "framework"
    return Path(base) / "datasets"


def fingerprint(frames: dict[str, pd.DataFrame | None], settings: dict) -> str:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(json.dumps({"settings": settings, "version": __version__, "format": FORMAT},
                             sort_keys=True, default=str).encode())
    for role in sorted(frames):
        frame = frames[role]
        digest.update(role.encode())
        if frame is None:
            continue
        digest.update(json.dumps([str(c) for c in frame.columns]).encode())
        for position in range(frame.shape[1]):
            _hash_column(digest, frame.iloc[:, position])
    return digest.hexdigest()


# Cells of one shape and dtype are joined into one buffer per call (one C pass over their bytes),
# at most this many bytes at a time.
JOIN_BYTES = 64 << 20


def _hash_column(digest: Any, column: pd.Series) -> None:
    """Scalars through pandas' row hash; cells that are arrays or lists (audio samples, pixels, vectors)
    by their dtype, shape and bytes: pandas cannot hash them, and its text fallback would hash a long
    array's elided repr."""
    values = column.to_numpy(dtype=object) if column.dtype == object else None
    if values is None or pd.api.types.infer_dtype(values, skipna=False) != "mixed" or not _holds_arrays(values):
        digest.update(pd.util.hash_pandas_object(column, index=False).to_numpy().tobytes())
        return
    cells = [value if type(value) is np.ndarray else _as_array(value) for value in values]
    kinds = {(c.dtype.str, c.shape) if isinstance(c, np.ndarray) and c.dtype != object else None for c in cells}
    if len(kinds) == 1 and None not in kinds:  # every row the same layout: its bytes alone tell rows apart
        digest.update(f"uniform:{kinds.pop()}:{len(cells)}".encode())
        step = max(1, JOIN_BYTES // max(1, cells[0].nbytes))
        for start in range(0, len(cells), step):
            digest.update(b"".join(np.ascontiguousarray(c) for c in cells[start:start + step]))
        return
    for cell in cells:  # mixed layouts, or arrays beside missing values: each cell framed by its own header
        if isinstance(cell, np.ndarray) and cell.dtype != object:
            digest.update(f"|{cell.dtype.str}:{cell.shape}:".encode())
            digest.update(np.ascontiguousarray(cell))
        else:
            digest.update(f"|{type(cell).__name__}:{cell!r}".encode())


def _holds_arrays(values: np.ndarray) -> bool:
    return any(isinstance(value, (np.ndarray, list, tuple)) for value in values)


def _as_array(value: Any) -> Any:
    """A list or tuple of numbers hashes as the array it becomes; a ragged one by its repr."""
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value)
        except ValueError:
            return value
    return value


def to_arrow(array: np.ndarray | Ragged) -> pa.Array:
    """One Arrow column of `array`, built in one call: rows of several values as a FixedSizeListArray."""
    if isinstance(array, Ragged):  # Arrow's list layout is Ragged's: values + offsets, no copy
        values = array.values[array.offsets[0]:array.offsets[-1]]
        return pa.LargeListArray.from_arrays(pa.array(array.offsets - array.offsets[0]), to_arrow(values))
    if array.ndim == 1:
        return pa.array(array)
    flat = pa.array(array.reshape(len(array), -1).ravel())
    return pa.FixedSizeListArray.from_arrays(flat, int(np.prod(array.shape[1:])))


def _layout(array: np.ndarray | Ragged) -> dict:
    """What _from_arrow needs to rebuild the array exactly: its row shape, or its pad value."""
    if isinstance(array, Ragged):
        return {"ragged": True, "pad_value": array.pad_value, "pad_left": array.pad_left,
                "shape": list(array.values.shape[1:])}
    return {"shape": list(array.shape[1:])}


def _writable(array: np.ndarray) -> np.ndarray:
    return array if array.flags.writeable else array.copy()  # torch.from_numpy wants writable memory


def _from_arrow(column: pa.ChunkedArray, layout: dict) -> np.ndarray | Ragged:
    column = column.combine_chunks()
    if layout.get("ragged"):
        offsets = column.offsets.to_numpy(zero_copy_only=False)
        values = column.values
        if isinstance(values, pa.FixedSizeListArray):  # rows of several numbers each (a bag's id and count)
            values = values.flatten().to_numpy(zero_copy_only=False).reshape([-1, *layout["shape"]])
        else:
            values = values.to_numpy(zero_copy_only=False)
        return Ragged(_writable(values), offsets - offsets[0], layout["pad_value"], layout.get("pad_left", False))
    if isinstance(column, pa.FixedSizeListArray):
        return _writable(column.flatten().to_numpy(zero_copy_only=False).reshape([-1, *layout["shape"]]))
    return _writable(column.to_numpy(zero_copy_only=False))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(root: Path, key: str, splits: dict[str, dict[str, np.ndarray]], metadata: dict) -> None:
    with atomic.atomic_dir(root / key) as tmp:
        manifest = {"format": FORMAT, "version": __version__, "metadata": metadata, "files": {}, "layouts": {}}
        for split, columns in splits.items():
            table = pa.table({name: to_arrow(array) for name, array in columns.items()})
            pq.write_table(table, tmp / f"{split}.parquet", compression="none")
            manifest["files"][split] = _sha256(tmp / f"{split}.parquet")
            manifest["layouts"][split] = {name: _layout(array) for name, array in columns.items()}
        (tmp / "manifest.json").write_text(json.dumps(manifest))


def load(root: Path, key: str) -> tuple[dict[str, dict[str, np.ndarray]], dict] | None:
    """The cached splits and metadata, or None when absent, partial, corrupt or stale."""
    directory = root / key
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
        if manifest.get("format") != FORMAT:
            return None
        splits = {}
        for split, checksum in manifest["files"].items():
            path = directory / f"{split}.parquet"
            if _sha256(path) != checksum:
                return None
            table = pq.read_table(path)
            layouts = manifest["layouts"][split]
            splits[split] = {name: _from_arrow(table.column(name), layouts[name]) for name in table.column_names}
        return splits, manifest["metadata"]
    except (OSError, ValueError, KeyError, pa.ArrowException):
        return None
