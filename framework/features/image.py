"""Images: a column of file paths, encoded bytes or pixel arrays, brought to one shape [C, H, W].

Paths are relative to the dataset file's directory (a DataFrame's `attrs["directory"]` when it has
one, the working directory otherwise). Pixels are stored as uint8 (a quarter of float32's memory)
and scaled on the device by the encoder with the statistics fitted here, after its training-only
augmentation. A split whose decoded images exceed `max_in_memory_mb` keeps its paths instead and is
decoded batch by batch in background threads (framework/data/image_loader.py).

A cell that yields no image (missing, no such file, not an image, corrupt) is a zeros image, or its
row is dropped with `missing_value_strategy: drop_row`; either way the rows are counted and the
first ones named, once over all splits.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Any

import marshmallow
import numpy as np
import pandas as pd

from framework.config import fields as f
from framework.data import notices
from framework.data.image_io import (RESIZE_METHODS, ImageSpec, UnreadableImage, decode_all, file_identity,
                                     header, is_readable, pool_map, resolve_path)
from framework.errors import DataError
from framework.registry import register_feature_type

STATS_SAMPLE = 1000  # images decoded to fit `standardize`: per-channel means settle long before this
EXAMPLES = 3


class ImagePreprocessing(f.Schema):
    missing_value_strategy = f.Choice(["fill_with_zeros", "drop_row"], "fill_with_zeros",
                                      doc="what a missing or unreadable image becomes: an all-zeros image, or "
                                          "its row is dropped (training and evaluation; prediction keeps every row)")
    height = f.Int(None, min=1, doc="height every image is resized to (default: the most common among the "
                                    "first infer_image_sample_size images)")
    width = f.Int(None, min=1, doc="width every image is resized to (default: inferred with height)")
    num_channels = f.Choice([None, 1, 3, 4], None, doc="1 grayscale, 3 RGB, 4 RGBA; images are converted "
                                                       "(default: the most common among the sampled images)")
    resize_method = f.Choice(list(RESIZE_METHODS), "interpolate",
                             doc="interpolate: bilinear resize; crop_or_pad: keep the centre, pad with zeros")
    infer_image_sample_size = f.Int(100, min=1, doc="images whose headers decide an unset size or channel count")
    normalization = f.Choice(["pixel_normalization", "standardize", None], "pixel_normalization",
                             doc="pixel_normalization: values in [0, 1]; standardize: per-channel mean and std "
                                 "fitted on the training split; null: raw 0-255 values")
    in_memory = f.Choice(["auto", True, False], "auto",
                         doc="true: decode every image at preprocessing; false: keep file paths and decode each "
                             "batch in background threads; auto: in memory unless a split's decoded images "
                             "exceed max_in_memory_mb")
    max_in_memory_mb = f.Int(2048, min=0, doc="in_memory auto: the largest decoded split kept in memory")

    @marshmallow.validates_schema
    def _height_with_width(self, data: dict, **kwargs: Any) -> None:
        if (data.get("height") is None) != (data.get("width") is None):
            raise marshmallow.ValidationError("set both height and width, or neither (both are then inferred)",
                                              "height" if data.get("height") is None else "width")


def missing_mask(column: pd.Series) -> np.ndarray:
    """NA or a blank string; unlike the text types' check, cells may be bytes or arrays, never cast to text."""
    values = column.to_numpy(dtype=object)
    return np.fromiter((value is None or (isinstance(value, str) and not value.strip())
                        or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT
                        for value in values), dtype=bool, count=len(values))


def _directory(column: pd.Series) -> str | None:
    return column.attrs.get("directory")


def _cells(column: pd.Series, missing: np.ndarray) -> list[Any]:
    values = column.to_numpy(dtype=object)
    return [None if gone else value for value, gone in zip(values, missing)]


def _named(column: pd.Series, why: dict[int, str]) -> str:
    """The first few unreadable rows: index label, value and reason."""
    shown = [f"index {column.index[i]} ({str(column.iloc[i])[:80]!r}: {reason})" for i, reason in list(why.items())[:EXAMPLES]]
    return "; ".join(shown) + ("; ..." if len(why) > EXAMPLES else "")


def _report_unreadable(column: pd.Series, why: dict[int, str], name: str, outcome: str) -> None:
    if not why:
        return
    examples = _named(column, why)
    notices.count(f"image:{name}:unreadable:{outcome}",
                  lambda t: f"image feature '{name}': {t['rows']} of {t['of']} rows have no readable image and "
                            f"{outcome}; first: {examples}", rows=len(why), of=len(column))


def _most_common(values: list, what: str, name: str, setting: str) -> Any:
    counts = Counter(values)
    chosen, _ = counts.most_common(1)[0]
    if len(counts) > 1:
        seen = ", ".join(f"{v} in {n}" for v, n in counts.most_common(4))
        notices.count(f"image:{name}:inferred:{setting}",
                      lambda t: f"image feature '{name}': the sampled images differ in {what} ({seen}); every image "
                                f"is brought to {chosen} (the most common); set preprocessing.{setting} to choose")
    return chosen


def _infer_shape(column: pd.Series, settings: dict, name: str) -> tuple[int, int, int]:
    present = np.flatnonzero(~missing_mask(column))[:settings["infer_image_sample_size"]]
    directory = _directory(column)

    def read(position: int):
        try:
            return header(column.iloc[position], directory)
        except UnreadableImage as error:
            return str(error)

    headers = [read(p) for p in present]
    found = [h for h in headers if isinstance(h, tuple)]
    if not found:
        reasons = "; ".join(f"{str(column.iloc[p])[:80]!r}: {h}" for p, h in list(zip(present, headers))[:EXAMPLES])
        raise DataError(f"image feature '{name}': none of the first {len(present)} images of the training split "
                        f"could be read ({reasons}); relative paths are read from "
                        f"{directory or 'the working directory ' + os.getcwd()}")
    if settings["height"] is not None:
        height, width = settings["height"], settings["width"]
    else:
        size = _most_common([f"{h}x{w}" for h, w, _ in found], "size (height x width)", name, "height/width")
        height, width = map(int, size.split("x"))
    channels = settings["num_channels"]
    if channels is None:
        channels = _most_common([c for _, _, c in found], "channels", name, "num_channels")
    return height, width, channels


def _channel_statistics(column: pd.Series, spec: ImageSpec) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units over an evenly spaced sample of the readable images."""
    present = np.flatnonzero(~missing_mask(column))
    sample = present[np.linspace(0, len(present) - 1, min(len(present), STATS_SAMPLE)).astype(int)]
    pixels, bad = decode_all([column.iloc[p] for p in sample], spec, _directory(column))
    good = np.setdiff1d(np.arange(len(sample)), list(bad))
    values = pixels[good].transpose(1, 0, 2, 3).reshape(spec.num_channels, -1).astype(np.float64) / 255.0
    std = values.std(axis=1)
    return values.mean(axis=1).tolist(), np.where(std > 1e-6, std, 1.0).tolist()


def spec_of(metadata: dict) -> ImageSpec:
    return ImageSpec(metadata["height"], metadata["width"], metadata["num_channels"], metadata["resize_method"])


def _keeps_paths(column: pd.Series, cells: list[Any], spec: ImageSpec, settings: dict) -> bool:
    """Whether this split stays as paths: asked for, or auto and too large; only paths can stay
    (bytes and arrays are already in memory, in the DataFrame)."""
    wanted = settings["in_memory"]
    if wanted is True or (wanted == "auto" and len(cells) * spec.row_bytes <= settings["max_in_memory_mb"] << 20):
        return False
    return all(cell is None or isinstance(cell, (str, os.PathLike)) for cell in cells)


def _paths(column: pd.Series, cells: list[Any], name: str, strategy: str) -> np.ndarray:
    """Absolute paths ('' for a missing or unreadable image), each file's header checked now, so a
    bad file is counted here rather than found mid-training."""
    directory = _directory(column)

    def check(cell: Any) -> str | None:
        if cell is None:
            return None
        try:
            header(cell, directory)
            return None
        except UnreadableImage as error:
            return str(error)

    reasons = pool_map(check, cells)
    why = {i: r for i, r in enumerate(reasons) if r is not None}
    _report_unreadable(column, why, name, _outcome(strategy))
    return np.array(["" if cell is None or i in why else resolve_path(os.fspath(cell), directory)
                     for i, cell in enumerate(cells)], dtype=object)


def _outcome(strategy: str) -> str:
    if strategy == "drop_row":
        return "read as zeros images (drop_row drops such rows in training and evaluation, never in prediction)"
    return "read as zeros images (missing_value_strategy fill_with_zeros)"


@register_feature_type("image")
class ImageFeature:
    preprocessing_schema = ImagePreprocessing
    default_encoder = "stacked_cnn"
    default_decoder = None  # an input-only type
    default_loss = None
    default_metrics = ()
    binary_cells = True  # cells may be encoded image bytes: the reader leaves them bytes, not text

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict:
        if missing_mask(column).all():
            raise DataError(f"image feature '{name}': every value in the training split is missing")
        height, width, channels = _infer_shape(column, settings, name)
        spec = ImageSpec(height, width, channels, settings["resize_method"])
        mean, std = [0.0] * channels, [1.0] * channels
        if settings["normalization"] == "standardize":
            mean, std = _channel_statistics(column, spec)
        elif settings["normalization"] is None:
            std = [1.0 / 255.0] * channels
        return {"height": height, "width": width, "num_channels": channels,
                "resize_method": settings["resize_method"], "normalization": settings["normalization"],
                "pixel_mean": mean, "pixel_std": std}

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> np.ndarray:
        """uint8 [N, C, H, W], or (kept as paths) an object array of absolute paths that `batch_column`
        turns into a column decoded per batch."""
        missing = missing_mask(column)
        cells = _cells(column, missing)
        spec = spec_of(metadata)
        if missing.any():
            notices.count(f"image:{name}:missing", lambda t: f"image feature '{name}': {t['rows']} of {t['of']} rows "
                                                             "have no value and read as zeros images",
                          rows=int(missing.sum()), of=len(column))
        if _keeps_paths(column, cells, spec, settings):
            return _paths(column, cells, name, settings["missing_value_strategy"])
        pixels, why = decode_all(cells, spec, _directory(column))
        _report_unreadable(column, why, name, _outcome(settings["missing_value_strategy"]))
        return pixels

    @staticmethod
    def batch_column(array: np.ndarray, metadata: dict, name: str) -> Any:
        """The column ArrayDataset batches: decoded pixels as they are, kept paths decoded per batch."""
        if array.dtype != object:
            return array
        from framework.data.image_loader import LazyImages

        return LazyImages(array, spec_of(metadata), name)

    @staticmethod
    def missing_rows(column: pd.Series, settings: dict, name: str) -> np.ndarray:
        """Rows drop_row drops: no value, or a file that is absent, not an image or fails its checksums."""
        missing = missing_mask(column)
        directory = _directory(column)
        reasons = pool_map(lambda cell: None if cell is None else is_readable(cell, directory),
                            _cells(column, missing))
        why = {i: r for i, r in enumerate(reasons) if r is not None}
        if why:
            examples = _named(column, why)
            notices.count(f"image:{name}:dropped", lambda t: f"image feature '{name}': dropped {t['rows']} rows "
                                                             f"whose image could not be read (drop_row); first: {examples}",
                          rows=len(why))
        unreadable = np.zeros(len(column), dtype=bool)
        unreadable[list(why)] = True
        return missing | unreadable

    @staticmethod
    def row_fingerprints(column: pd.Series) -> pd.Series:
        """What each row reads, for the preprocessing cache's key: a path's resolved location, size and
        modification time (an image replaced under the same name misses the cache); bytes and pixel
        arrays stay as they are and are hashed by the cache itself (framework/data/cache.py)."""
        directory = _directory(column)

        def one(cell: Any) -> Any:
            if isinstance(cell, (str, os.PathLike)):
                return file_identity(cell, directory)
            return bytes(cell) if isinstance(cell, memoryview) else cell  # a view's repr would not show its bytes

        return pd.Series([one(cell) for cell in column.to_numpy(dtype=object)], index=column.index, dtype=object)

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {"num_channels": metadata["num_channels"], "height": metadata["height"], "width": metadata["width"],
                "pixel_mean": metadata["pixel_mean"], "pixel_std": metadata["pixel_std"],
                "embeddings_cached": metadata.get("embeddings_cached", False)}


__all__ = ["ImageFeature", "ImagePreprocessing", "spec_of"]
