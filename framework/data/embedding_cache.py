"""Embeddings of frozen pretrained encoders, computed once and kept on disk.

A frozen, unadapted encoder (the text llm encoder and the huggingface image encoder by default) maps
the same input to the same vector, so the pipeline replaces such a column's token ids or pixels by the
pooled vectors: training, evaluation and prediction then run the head alone. Vectors are stored per
row, keyed by a hash of the row's ids or pixels (or, for images kept as files, the file's path, size
and modification time), under a directory keyed by the encoder's identity (model path, a fingerprint
of its weight files, its settings and the feature's preprocessing); each batch of newly computed rows
is one more shard. So a second
training run with another head, a run after a restart, or prediction on new data computes only the
rows not seen before.

Shards are .npz files written atomically; a zip member's CRC is checked as it is read, so a corrupt
or truncated shard fails to load: it is removed and its rows are computed again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from framework import atomic
from framework.data.image_io import file_identity
from framework.data.ragged import Ragged
from framework.registry import encoders

logger = logging.getLogger(__name__)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack")
SAMPLE_BYTES = 1 << 20


def embeddings_root() -> Path:
    base = os.environ.get("FRAMEWORK_CACHE_DIR") or Path.home() / ".cache" / "framework"
    return Path(base) / "embeddings"


def cached_features(config: dict) -> list[dict]:
    """The input features whose encoder output depends on the text alone and asks to be cached."""
    found = []
    for feature in config["input_features"]:
        encoder = feature["encoder"]
        cls = encoders.get(encoder["type"], feature["type"]).cls
        if getattr(cls, "cacheable", None) is not None and cls.cacheable(encoder):
            found.append(feature)
    return found


def weights_fingerprint(base_model: str) -> str:
    """Names, sizes and the first and last MiB of each weight file of a local model; a hub name is its
    own identity (its files come from the local Hugging Face cache and change only with the name)."""
    path = Path(base_model).expanduser()
    if not path.is_dir():
        return base_model
    digest = hashlib.blake2b(digest_size=16)
    for file in sorted(p for p in path.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path)}:{size}".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(SAMPLE_BYTES))
            if size > SAMPLE_BYTES:
                handle.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
                digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()


def identity(feature: dict) -> str:
    """Everything an embedding depends on besides the row: the model (where it is and what its weights
    are), the encoder's settings and the feature's preprocessing (an image's size, say)."""
    settings = feature["encoder"]
    base = settings["base_model"]
    location = str(Path(base).expanduser().resolve()) if Path(base).expanduser().is_dir() else base
    described = {"model": location, "weights": weights_fingerprint(base), "type": feature["type"],
                 "encoder": {k: v for k, v in settings.items() if k not in ("base_model", "cache")},
                 "preprocessing": feature.get("preprocessing")}
    return hashlib.blake2b(json.dumps(described, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def _key(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def row_keys(column: Ragged | np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row (a collision needs ~4 billion distinct rows to be likely): of its ids, its
    pixels, or for a file kept as a path, of the path, size and modification time (a file replaced under
    the same name is embedded again)."""
    if isinstance(column, Ragged):
        values = np.ascontiguousarray(column.values, dtype=np.int64)
        offsets = column.offsets
        keys = (_key(values[a:b].tobytes()) for a, b in zip(offsets[:-1], offsets[1:]))
    elif column.dtype == object:
        keys = (_key((file_identity(path) if path else "<missing>").encode()) for path in column)
    else:
        keys = (_key(np.ascontiguousarray(row).tobytes()) for row in column)
    return np.fromiter(keys, dtype=np.uint64, count=len(column))


class EmbeddingStore:
    """The shards of one encoder identity: keys [n] uint64 and vectors [n, size] float32 each."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.keys = np.zeros(0, dtype=np.uint64)
        self.vectors: np.ndarray | None = None
        self._load()

    def _load(self) -> None:
        keys, vectors = [], []
        for shard in sorted(self.directory.glob("shard-*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    shard_keys, shard_vectors = data["keys"], data["vectors"]
                if len(shard_keys) != len(shard_vectors) or shard_keys.dtype != np.uint64:
                    raise ValueError("keys and vectors disagree")
            except Exception as error:  # noqa: BLE001 - zipfile, numpy and OS errors all mean: not usable
                logger.warning("embedding cache shard %s is damaged (%s): removed, its rows are computed again",
                               shard, error)
                shard.unlink(missing_ok=True)
                continue
            keys.append(shard_keys)
            vectors.append(shard_vectors)
        if keys:
            self.keys = np.concatenate(keys)
            self.vectors = np.concatenate(vectors)
            order = np.argsort(self.keys, kind="stable")
            self.keys, self.vectors = self.keys[order], self.vectors[order]

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in the store, found mask) for each key."""
        if not len(self.keys):
            return np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=bool)
        positions = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return positions, self.keys[positions] == keys

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic.atomic_path(self.directory / f"shard-{uuid.uuid4().hex}.npz") as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, keys=keys, vectors=vectors)
        merged_keys = np.concatenate([self.keys, keys])
        merged = vectors if self.vectors is None else np.concatenate([self.vectors, vectors])
        order = np.argsort(merged_keys, kind="stable")
        self.keys, self.vectors = merged_keys[order], merged[order]


def embed(column: Ragged | np.ndarray, store: EmbeddingStore, compute: Callable[[Any], np.ndarray]) -> np.ndarray:
    """[rows, size] float32: cached vectors, and the missing rows computed (once per distinct row) and stored."""
    keys = row_keys(column)
    _, found = store.lookup(keys)
    if not found.all():
        missing_keys, first = np.unique(keys[~found], return_index=True)
        rows = np.flatnonzero(~found)[first]
        store.add(missing_keys, compute(column[rows]).astype(np.float32))
    positions, found = store.lookup(keys)
    assert found.all()
    return store.vectors[positions]


def encoder_computation(feature: dict, metadata: dict, batch_size: int = 64,
                        progress_bar: bool = True) -> Callable[[Any], np.ndarray]:
    """A function computing the pooled vectors of rows (token ids, pixels or image paths) with the feature's
    encoder (loaded once, on first use, on a GPU when there is one); rows of ids go in batches sorted by
    length so padding is short, image files are decoded a batch at a time."""
    from framework.models.build import build
    from framework.registry import feature_types

    state: dict[str, Any] = {}

    def compute(rows: Ragged | np.ndarray) -> np.ndarray:
        if "module" not in state:
            entry = encoders.get(feature["encoder"]["type"], feature["type"])
            context = {**feature_types.get(feature["type"]).cls.input_context(metadata), "embeddings_cached": False}
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            state["module"] = build(entry, context, feature["encoder"]).to(device).eval()
            state["device"] = device
        module, device = state["module"], state["device"]
        out = np.zeros((len(rows), module.output_size), dtype=np.float32)
        with torch.inference_mode():
            for chosen, array in tqdm(_batches(rows, batch_size, feature, metadata), total=-(-len(rows) // batch_size),
                                      disable=not progress_bar, unit="batch", desc=f"embedding {feature['name']}"):
                encoded = module(torch.from_numpy(array).to(device))
                out[chosen] = getattr(encoded, "pooled", encoded).float().cpu().numpy()
        return out

    return compute


def _batches(rows: Ragged | np.ndarray, batch_size: int, feature: dict,
             metadata: dict) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(positions, batch array) of every batch of the rows: ids sorted by length (short padding), pixels
    as they are, image files decoded by one chunk's background threads while earlier batches are encoded."""
    order = np.argsort(rows.lengths, kind="stable") if isinstance(rows, Ragged) else np.arange(len(rows))
    images = None
    if isinstance(rows, np.ndarray) and rows.dtype == object:  # images kept as files
        from framework.features.image import ImageFeature

        images = ImageFeature.batch_column(rows, metadata, feature["name"])
    try:
        chunk = images[order] if images is not None else None
        for start in range(0, len(rows), batch_size):
            chosen = order[start:start + batch_size]
            if chunk is not None:
                yield chosen, chunk[start:start + batch_size].padded()
            elif isinstance(rows, Ragged):
                yield chosen, rows[chosen].padded()
            else:
                yield chosen, rows[chosen]
    finally:
        if images is not None:
            images.close()


def embed_columns(config: dict, metadata: dict, splits: dict[str, dict[str, Any]], root: Path | None = None,
                  progress_bar: bool = True) -> None:
    """Replaces, in place, the id columns of cacheable encoders by their pooled vectors, in every split,
    and marks the feature's metadata so the model is built to read vectors."""
    for feature in cached_features(config):
        name = feature["name"]
        metadata[name]["embeddings_cached"] = True
        store = EmbeddingStore((root or embeddings_root()) / identity(feature))
        compute = encoder_computation(feature, metadata[name], progress_bar=progress_bar)
        holders = [arrays for arrays in splits.values() if name in arrays and not _embedded(arrays[name])]
        if not holders:
            continue
        # every split at once: one pass over the rows not cached yet, one shard
        parts = [arrays[name] for arrays in holders]
        whole = Ragged.from_lengths(np.concatenate([p.values[p.offsets[0]:p.offsets[-1]] for p in parts]),
                                    np.concatenate([p.lengths for p in parts]), parts[0].pad_value,
                                    parts[0].pad_left) if isinstance(parts[0], Ragged) else np.concatenate(parts)
        vectors = embed(whole, store, compute)
        start = 0
        for arrays, part in zip(holders, parts):
            arrays[name] = vectors[start:start + len(part)]
            start += len(part)


def _embedded(column: Any) -> bool:
    """Whether a column already holds vectors (float32 [rows, size]) rather than ids, pixels or paths."""
    return isinstance(column, np.ndarray) and column.dtype == np.float32 and column.ndim == 2
