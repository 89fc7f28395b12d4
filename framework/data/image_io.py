"""Turning one image cell (a file path, encoded bytes, an array or a PIL image) into uint8 pixels.

Every image of a feature comes out with the same shape [channels, height, width], so a column is one
contiguous uint8 array (a quarter of float32's memory; scaling to floats happens on the device, in
the encoder). Decoding is per file by nature; Pillow releases the GIL while it decodes and resizes,
so a thread pool decodes several files at once.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

# Pillow's modes by the channel count they hold; a mode not listed converts through RGB(A)
MODES = {1: "L", 3: "RGB", 4: "RGBA"}
CHANNELS_OF_MODE = {"1": 1, "L": 1, "I": 1, "I;16": 1, "F": 1, "LA": 1, "RGB": 3, "YCbCr": 3, "LAB": 3,
                    "HSV": 3, "CMYK": 3, "P": 3, "RGBA": 4, "RGBa": 4, "PA": 4, "La": 1}
RESIZE_METHODS = ("interpolate", "crop_or_pad")


class UnreadableImage(Exception):
    """A cell that yields no image; the message says why (no such file, not an image, truncated)."""


@dataclass(frozen=True)
class ImageSpec:
    """The shape every decoded image is brought to."""

    height: int
    width: int
    num_channels: int
    resize_method: str = "interpolate"

    @property
    def row_bytes(self) -> int:
        return self.height * self.width * self.num_channels


def workers() -> int:
    return min(8, os.cpu_count() or 1)


def resolve_path(value: str | os.PathLike, directory: str | None) -> str:
    """A relative path is relative to the dataset file's directory (the cwd for a DataFrame without one)."""
    path = Path(value).expanduser()
    if not path.is_absolute() and directory is not None:
        path = Path(directory) / path
    return str(path)


def file_identity(path: str | os.PathLike, directory: str | None = None) -> str:
    """`abspath:size:mtime_ns` of the file a path names (`abspath:absent` where there is none): what a
    cache keys a file by, so a file rewritten under the same name misses it."""
    location = os.path.abspath(resolve_path(path, directory))
    try:
        stat = os.stat(location)
    except OSError:
        return f"{location}:absent"
    return f"{location}:{stat.st_size}:{stat.st_mtime_ns}"


def pool_map(fn: Callable[[Any], Any], cells: Sequence[Any]) -> list[Any]:
    """`fn` over the cells, results in order: on a thread pool of `workers()` (file reads wait on the disk,
    and Pillow and libsndfile release the GIL), serially for a few cells."""
    if len(cells) < 64:
        return list(map(fn, cells))
    with ThreadPoolExecutor(workers(), thread_name_prefix="file-read") as pool:
        return list(pool.map(fn, cells, chunksize=32))


def open_image(cell: Any, directory: str | None = None):
    """A PIL image of the cell, header read, pixels not yet decoded."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(cell, Image.Image):
        return cell
    if isinstance(cell, np.ndarray):
        return Image.fromarray(_as_pixel_array(cell))
    path = None
    try:
        if isinstance(cell, (bytes, bytearray, memoryview)):
            return Image.open(io.BytesIO(bytes(cell)))
        if isinstance(cell, (str, os.PathLike)):
            path = resolve_path(os.fspath(cell), directory)
            return Image.open(path)
    except UnidentifiedImageError:
        raise UnreadableImage("not an image Pillow can read") from None
    except OSError as error:  # no stat before opening: the open's own error tells what is wrong
        if isinstance(error, (FileNotFoundError, NotADirectoryError)) and path is not None:
            raise UnreadableImage(f"no such file: {path}") from None
        if isinstance(error, IsADirectoryError) and path is not None:
            raise UnreadableImage(f"a directory, not an image file: {path}") from None
        raise UnreadableImage(f"could not be read ({error})") from None
    raise UnreadableImage(f"a {type(cell).__name__}, not a file path, image bytes or an array")


def _as_pixel_array(array: np.ndarray) -> np.ndarray:
    """[H, W], [H, W, C] or channels-first [C, H, W] as uint8 [H, W(, C)]; floats in [0, 1] are scaled by 255."""
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise UnreadableImage(f"an array of shape {array.shape}; an image array is [H, W] or [H, W, 1|3|4]")
    if array.dtype != np.uint8:
        values = array.astype(np.float64)
        if values.size and np.nanmax(values) <= 1.0:
            values = values * 255.0
        array = np.clip(np.rint(np.nan_to_num(values)), 0, 255).astype(np.uint8)
    return array


def convert(image, num_channels: int):
    """The image in the mode of `num_channels` (transparency kept for RGBA, dropped for RGB and L)."""
    from PIL import Image

    mode = MODES[num_channels]
    if image.mode == mode:
        return image
    if image.mode in ("I", "I;16", "F"):  # 16/32-bit gray: scaled to 8 bits by the image's own range
        values = np.asarray(image, dtype=np.float64)
        top = values.max() if values.size and values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values * (255.0 / top), 0, 255).astype(np.uint8))
    if image.mode == "P" and num_channels != 1:
        image = image.convert("RGBA")
    return image.convert(mode)


def _fit_size(image, spec: ImageSpec):
    from PIL import Image

    if image.size == (spec.width, spec.height):
        return image
    if spec.resize_method == "interpolate":
        return image.resize((spec.width, spec.height), Image.Resampling.BILINEAR)
    # crop_or_pad: the centre kept, zeros around a smaller image
    canvas = Image.new(image.mode, (spec.width, spec.height), 0)
    left, top = (spec.width - image.width) // 2, (spec.height - image.height) // 2
    canvas.paste(image, (left, top))
    return canvas


def decode(cell: Any, spec: ImageSpec, directory: str | None = None) -> np.ndarray:
    """uint8 [C, H, W]; an UnreadableImage names what went wrong."""
    image = open_image(cell, directory)
    try:
        image.load()
        pixels = np.asarray(_fit_size(convert(image, spec.num_channels), spec), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as error:  # truncated or corrupt data past the header
        raise UnreadableImage(f"corrupt or truncated image data ({error})") from None
    return pixels.reshape(spec.height, spec.width, spec.num_channels).transpose(2, 0, 1)


def decode_into(cells: Iterable[Any], out: np.ndarray, spec: ImageSpec, directory: str | None,
                map_fn: Callable = map) -> dict[int, str]:
    """Fills out[i] with cell i's pixels (zeros where None or unreadable); returns {position: why} of the
    unreadable."""
    def one(item: tuple[int, Any]) -> tuple[int, str | None]:
        position, cell = item
        if cell is None:  # a missing value: zeros, not an unreadable image
            out[position] = 0
            return position, None
        try:
            out[position] = decode(cell, spec, directory)
            return position, None
        except UnreadableImage as error:
            out[position] = 0
            return position, str(error)

    return {position: why for position, why in map_fn(one, enumerate(cells)) if why is not None}


def decode_all(cells: list[Any], spec: ImageSpec, directory: str | None) -> tuple[np.ndarray, dict[int, str]]:
    """uint8 [N, C, H, W] of every cell, decoded by a thread pool, and {position: why} of the unreadable."""
    out = np.empty((len(cells), spec.num_channels, spec.height, spec.width), dtype=np.uint8)
    if len(cells) < 64:
        return out, decode_into(cells, out, spec, directory)
    with ThreadPoolExecutor(workers(), thread_name_prefix="image-decode") as pool:
        return out, decode_into(cells, out, spec, directory, lambda fn, items: pool.map(fn, items, chunksize=16))


def header(cell: Any, directory: str | None) -> tuple[int, int, int]:
    """(height, width, channels) from the header alone, or UnreadableImage."""
    image = open_image(cell, directory)
    return image.height, image.width, CHANNELS_OF_MODE.get(image.mode, 3)


def is_readable(cell: Any, directory: str | None) -> str | None:
    """None when the cell opens as an image and its data checks out, else why not.

    Pillow's verify() reads the file through its checksums without decoding pixels: cheaper than
    decoding, and it finds most truncated files; what it misses is found when decoding.
    """
    try:
        image = open_image(cell, directory)
        if not isinstance(cell, np.ndarray) and hasattr(image, "verify") and getattr(image, "fp", None):
            image.verify()
    except UnreadableImage as error:
        return str(error)
    except (OSError, ValueError, SyntaxError) as error:
        return f"corrupt or truncated image data ({error})"
    return None
