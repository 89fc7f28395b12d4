"""Images drawn with Pillow for the image tests: circles, squares and triangles of random size and place."""
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def draw(shape: str, size: int, rng: np.random.Generator, mode: str = "L") -> Image.Image:
    """One shape, bright on a dark background, its size and centre drawn at random."""
    image = Image.new(mode, (size, size), 0)
    pen = ImageDraw.Draw(image)
    radius = rng.uniform(0.25, 0.42) * size
    cx, cy = rng.uniform(radius, size - radius, 2)
    colour = int(rng.integers(160, 256)) if mode == "L" else tuple(int(c) for c in rng.integers(120, 256, 3))
    if shape == "circle":
        pen.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    elif shape == "square":
        pen.rectangle([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    else:
        pen.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    return image


def shapes_frame(directory: Path, n: int, seed: int = 0, size: int = 16, mode: str = "L") -> pd.DataFrame:
    """n rows: a PNG per row under `directory` (paths relative to it) and its shape's name."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        shape = SHAPES[i % len(SHAPES)]
        name = f"img_{seed}_{i}.png"
        draw(shape, size, rng, mode).save(directory / name)
        rows.append({"image": name, "shape": shape, "noise": rng.normal()})
    return pd.DataFrame(rows)


def image_config(encoder: dict | None = None, preprocessing: dict | None = None, inputs: tuple = (), **trainer) -> dict:
    return {
        "input_features": [{"name": "image", "type": "image", "encoder": encoder or {"type": "stacked_cnn"},
                            "preprocessing": preprocessing or {}}, *inputs],
        "output_features": [{"name": "shape", "type": "category"}],
        "combiner": {"type": "concat"},
        "trainer": {"epochs": 8, "batch_size": 16, "learning_rate": 0.005, "progress_bar": False, **trainer},
    }
