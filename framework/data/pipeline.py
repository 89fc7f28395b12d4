"""From raw data to preprocessed splits: read, check, sample, split, drop, fit on train, transform.

Feature metadata is fitted on the training split only, then every split is transformed with it, so
nothing about the validation or test rows leaks into the model. The whole result is cached.
"""
from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from framework.config.problems import closest
from framework.data import cache, notices
from framework.data.dataset import ArrayDataset
from framework.data.embedding_cache import cached_features, embed_columns
from framework.data.embedding_cache import identity as embedding_identity
from framework.data.readers import read_dataset
from framework.data.split import SPLITS, split_rows
from framework.errors import DataError
from framework.features.base import missing_mask
from framework.registry import feature_types

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    splits: dict[str, ArrayDataset]
    metadata: dict[str, dict]
    cache_hit: bool = False


def features_of(config: dict, outputs: bool = True) -> list[dict]:
    return config["input_features"] + (config["output_features"] if outputs else [])


def check_columns(frame: pd.DataFrame, features: list[dict], role: str) -> None:
    present = [str(c) for c in frame.columns]
    for feature in features:
        if feature["column"] not in frame.columns:
            near = closest(feature["column"], present)
            hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
            shown = ", ".join(present[:30]) + (", ..." if len(present) > 30 else "")
            raise DataError(f"column '{feature['column']}' of feature '{feature['name']}' is not in the {role}{hint} "
                            f"(columns present: {shown})")
    if frame.empty:
        raise DataError(f"the {role} is empty (0 rows)")


def _sample(frame: pd.DataFrame, settings: dict, seed: int) -> pd.DataFrame:
    size = len(frame)
    if settings["sample_ratio"] < 1.0:
        size = max(1, int(round(size * settings["sample_ratio"])))
    if settings["sample_size"] is not None:
        size = min(size, settings["sample_size"])
    if size < len(frame):
        frame = frame.sample(n=size, random_state=seed).sort_index()
    return frame


def check_not_all_missing(frame: pd.DataFrame, features: list[dict], role: str) -> None:
    for feature in features:
        if missing_mask(frame[feature["column"]]).all():
            raise DataError(f"column '{feature['column']}' of output feature '{feature['name']}' has no values in "
                            f"the {role}: all {len(frame)} rows are missing")


def _kind(feature: dict) -> Any:
    return feature_types.get(feature["type"]).cls


def _missing(frame: pd.DataFrame, feature: dict) -> np.ndarray:
    """A type whose cells name files (images) also counts a file it cannot read as missing."""
    find = getattr(_kind(feature), "missing_rows", None)
    column = frame[feature["column"]]
    return missing_mask(column) if find is None else find(column, feature["preprocessing"], feature["name"])


def drop_missing(frame: pd.DataFrame, features: list[dict], role: str) -> pd.DataFrame:
    """Rows missing a value of a drop_row feature are dropped (outputs are drop_row by default)."""
    keep = np.ones(len(frame), dtype=bool)
    for feature in features:
        if feature["preprocessing"]["missing_value_strategy"] == "drop_row":
            keep &= ~_missing(frame, feature)
    if not keep.all():
        logger.info("dropped %d of %d rows of the %s with missing values", (~keep).sum(), len(frame), role)
    return frame[keep] if not keep.all() else frame


def _fit(train: pd.DataFrame, features: list[dict]) -> dict[str, dict]:
    return {f["name"]: feature_types.get(f["type"]).cls.fit(train[f["column"]], f["preprocessing"], f["name"])
            for f in features}


def transform(frame: pd.DataFrame, features: list[dict], metadata: dict) -> dict[str, np.ndarray]:
    return {f["name"]: feature_types.get(f["type"]).cls.transform(frame[f["column"]], f["preprocessing"],
                                                                    metadata[f["name"]], f["name"])
            for f in features}


def _used_columns(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame | None:
    return None if frame is None else frame[columns]


def _read(source: Any, features: list[dict], role: str = "dataset") -> pd.DataFrame:
    """The dataset, with the directory of its file in `attrs` (relative image paths are read from
    there); columns of a type whose cells may be raw bytes (images) are not decoded as text."""
    binary = [f["column"] for f in features if getattr(_kind(f), "binary_cells", False)]
    frame = read_dataset(source, role=role, keep_bytes=binary)
    if isinstance(source, (str, os.PathLike)):
        frame.attrs["directory"] = str(Path(source).resolve().parent)
    return frame


def _keyed(frames: dict[str, pd.DataFrame | None], features: list[dict]) -> dict[str, pd.DataFrame | None]:
    """The frames as the cache key sees them: a type that reads more than its cells (the file an image
    path names) gives each cell a fingerprint of what it reads."""
    hooks = {f["column"]: _kind(f).row_fingerprints for f in features
             if getattr(_kind(f), "row_fingerprints", None) is not None}
    if not hooks:
        return frames
    return {role: None if frame is None else frame.assign(**{c: hook(frame[c]) for c, hook in hooks.items()})
            for role, frame in frames.items()}


def _dataset(arrays: dict, features: list[dict], metadata: dict) -> ArrayDataset:
    """Batches of the arrays; a type may wrap its stored column (image paths become a column decoded
    per batch)."""
    columns = dict(arrays)
    for feature in features:
        wrap = getattr(_kind(feature), "batch_column", None)
        if wrap is not None and feature["name"] in columns:
            columns[feature["name"]] = wrap(columns[feature["name"]], metadata[feature["name"]], feature["name"])
    return ArrayDataset(columns)


def prepare_training(config: dict, dataset: Any, validation: Any = None, test: Any = None,
                     cache_dir: Any = None) -> Prepared:
    features = features_of(config)
    settings = config["preprocessing"]
    columns = list(dict.fromkeys(f["column"] for f in features))
    split_column = settings["split"]["column"] if settings["split"]["type"] == "fixed" else None
    frames = {"train": _read(dataset, features), "validation": None, "test": None}
    for role, source in (("validation", validation), ("test", test)):
        if source is not None:
            frames[role] = _read(source, features, role=f"{role} dataset")
    for role, frame in frames.items():
        if frame is not None:
            name = "dataset" if role == "train" else f"{role} dataset"
            check_columns(frame, features, name)
            check_not_all_missing(frame, config["output_features"], name)
    if split_column is not None and validation is None and test is None and split_column not in frames["train"]:
        check_columns(frames["train"], [{"name": "split", "column": split_column}], "dataset")
    needed = columns + ([split_column] if split_column and split_column not in columns and validation is None
                        and test is None else [])
    used = {role: _used_columns(frame, needed if role == "train" else columns) for role, frame in frames.items()}
    root = cache.cache_root(cache_dir)
    if settings["cache"]:  # the key hashes every row, so it is computed only when the cache is on
        # the arrays of a frozen LLM encoder's column are its embeddings: they depend on that encoder too
        embedded = {f["name"]: embedding_identity(f) for f in cached_features(config)}
        key_settings = {"features": [{k: f[k] for k in ("name", "type", "column", "preprocessing")} for f in features],
                        "preprocessing": settings, "seed": config["seed"], "embedded": embedded}
        key = cache.fingerprint(_keyed(used, features), key_settings)
        hit = cache.load(root, key)
        if hit is not None:
            arrays, metadata = hit
            return Prepared({name: _dataset(arrays.get(name, {}), features, metadata) for name in SPLITS}, metadata,
                            cache_hit=True)
    splits = split_frames(used, settings, config["seed"], explicit=validation is not None or test is not None)
    with notices.collected():
        splits = {role: drop_missing(frame, features, f"{role} split") if len(frame) else frame
                  for role, frame in splits.items()}
        if len(splits["train"]) == 0:
            raise DataError("the training split is empty; check preprocessing.split and the dataset's size")
        metadata = _fit(splits["train"], features)
        arrays = {role: transform(frame, features, metadata) if len(frame) else {} for role, frame in splits.items()}
    embed_columns(config, metadata, arrays, progress_bar=config["trainer"]["progress_bar"])
    if settings["cache"]:
        try:
            cache.save(root, key, arrays, metadata)
        except OSError as error:  # a cache that cannot be written costs time next run, not this run
            warnings.warn(f"could not write the preprocessing cache under {root}: {error}", stacklevel=2)
    return Prepared({role: _dataset(arrays[role], features, metadata) for role in SPLITS}, metadata)


def split_frames(frames: dict[str, pd.DataFrame | None], settings: dict, seed: int, explicit: bool) -> dict[str, pd.DataFrame]:
    train = _sample(frames["train"], settings, seed)
    if explicit:
        empty = train.iloc[:0]
        return {"train": train,
                "validation": frames["validation"] if frames["validation"] is not None else empty,
                "test": frames["test"] if frames["test"] is not None else empty}
    assignment = split_rows(train, settings["split"], seed)
    return {role: train[assignment == index] for index, role in enumerate(SPLITS)}


def prepare_inference(config: dict, metadata: dict, dataset: Any, with_targets: bool) -> tuple[ArrayDataset, pd.Index]:
    """Arrays for prediction (row order kept) or evaluation (rows missing a target dropped).

    Returns the dataset and the index labels of the input rows it holds.
    """
    features = features_of(config, outputs=with_targets)
    frame = _read(dataset, features)
    check_columns(frame, features, "dataset")
    keep = np.ones(len(frame), dtype=bool)
    if with_targets:
        for feature in config["output_features"]:
            keep &= ~missing_mask(frame[feature["column"]])
        if not keep.any():
            raise DataError("every row of the dataset is missing a value of an output feature")
    rows = np.flatnonzero(keep)
    frame = frame.iloc[rows] if not keep.all() else frame
    arrays = transform(frame, features, metadata)
    embed_columns(config, metadata, {"data": arrays}, progress_bar=config["trainer"]["progress_bar"])
    return _dataset(arrays, features, metadata), frame.index
