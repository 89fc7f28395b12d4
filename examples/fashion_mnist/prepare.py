"""Write Fashion-MNIST as PNG files and a CSV of their relative paths, labels and splits.

The images come from Debian's packaged copy (no download):

    sudo apt-get install dataset-fashion-mnist
    python examples/fashion_mnist/prepare.py            # 6,000 training + 1,000 test images
    python examples/fashion_mnist/prepare.py --all      # all 60,000 + 10,000
    framework train --config examples/fashion_mnist/config.yaml --dataset examples/fashion_mnist/fashion_mnist.csv

The CSV's `split` column keeps the official test images as the test split (the config's fixed
split), and holds out a tenth of the training images for validation. Paths are relative to the
CSV, so the folder can be moved as a whole.
"""
from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

HERE = Path(__file__).resolve().parent
SOURCE = Path("/usr/share/datasets/fashion-mnist")
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
VALIDATION_FRACTION = 0.1


def read_idx(path: Path) -> np.ndarray:
    """An idx file (big-endian header: magic with the dimension count, then each dimension's size)."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def available(source: Path = SOURCE) -> bool:
    return all((source / name).exists() for pair in FILES.values() for name in pair)


def prepare(out: Path, train: int | None = 6000, test: int | None = 1000, source: Path = SOURCE,
            seed: int = 0) -> Path:
    """PNGs under out/images/<split>/ and out/fashion_mnist.csv; None takes every image of a split.

    A random subset keeps the classes near their even share (Fashion-MNIST is balanced)."""
    rng = np.random.default_rng(seed)
    rows = []
    for role, count in (("train", train), ("test", test)):
        images, labels = (read_idx(source / name) for name in FILES[role])
        chosen = np.sort(rng.permutation(len(images))[:count]) if count is not None else np.arange(len(images))
        held_out = set(rng.permutation(chosen)[:int(round(len(chosen) * VALIDATION_FRACTION))].tolist()) \
            if role == "train" else set()
        directory = out / "images" / role
        directory.mkdir(parents=True, exist_ok=True)
        for index in chosen.tolist():
            name = f"images/{role}/{index:05d}.png"
            Image.fromarray(images[index], mode="L").save(out / name, optimize=False, compress_level=1)
            split = "test" if role == "test" else "validation" if index in held_out else "train"
            rows.append({"image_path": name, "label": CLASSES[labels[index]], "split": split})
    csv = out / "fashion_mnist.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=6000, help="training images (a tenth becomes validation)")
    parser.add_argument("--test", type=int, default=1000, help="test images")
    parser.add_argument("--all", action="store_true", help="every image: 60,000 training and 10,000 test")
    parser.add_argument("--source", type=Path, default=SOURCE, help="where the idx .gz files are")
    parser.add_argument("--out", type=Path, default=HERE, help="where images/ and fashion_mnist.csv go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not available(args.source):
        sys.exit(f"Fashion-MNIST's idx files are not in {args.source}: sudo apt-get install dataset-fashion-mnist "
                 "(or pass --source)")
    train, test = (None, None) if args.all else (args.train, args.test)
    csv = prepare(args.out, train, test, args.source, args.seed)
    print(f"wrote {csv} ({len(pd.read_csv(csv))} images)")


if __name__ == "__main__":
    main()
