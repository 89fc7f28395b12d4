"""The image and audio examples stay runnable: each prepare.py writes its files and CSV, and the shipped
config trained on a small subset of them reaches a pinned floor of test accuracy.

Their data comes from Debian packages, which CI installs:
    apt-get install -y dataset-fashion-mnist espeak-ng
"""
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from framework import Model

EXAMPLES = Path(__file__).parent.parent / "examples"


def script(example: str):
    """The example's prepare.py as a module of its own name (both examples name their script prepare.py)."""
    spec = importlib.util.spec_from_file_location(f"{example}_prepare", EXAMPLES / example / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trained(example: str, csv: Path, tmp_path: Path, **trainer) -> dict:
    model = Model(EXAMPLES / example / "config.yaml")
    model.config["trainer"].update(progress_bar=False, **trainer)
    return model.train(csv, output_dir=tmp_path / "results").test_metrics


def test_fashion_mnist_example_learns_from_a_subset(tmp_path):
    prepare = script("fashion_mnist")
    if not prepare.available():
        pytest.skip(f"Fashion-MNIST's idx files are not in {prepare.SOURCE}: apt-get install dataset-fashion-mnist")
    csv = prepare.prepare(tmp_path / "data", train=2500, test=400)
    frame = pd.read_csv(csv)
    assert len(frame) == 2900 and set(frame["split"]) == {"train", "validation", "test"}
    assert frame["label"].nunique() == 10 and (tmp_path / "data" / frame["image_path"][0]).is_file()
    metrics = trained("fashion_mnist", csv, tmp_path, epochs=10, early_stop=0)
    assert metrics["label"]["accuracy"] >= 0.7  # 0.745 seen; 10 classes: chance is 0.1


def test_spoken_digits_example_recognises_digits_in_unheard_voices(tmp_path):
    prepare = script("spoken_digits")
    if prepare.espeak() is None:
        pytest.skip("espeak-ng is not installed: apt-get install espeak-ng")
    csv = prepare.prepare(tmp_path / "data", count=40)
    frame = pd.read_csv(csv)
    assert len(frame) == 400 and set(frame["digit"]) == set(prepare.DIGITS)
    assert set(frame.loc[frame["split"] == "test", "voice"]) <= set(prepare.HELD_OUT)
    assert not set(frame.loc[frame["split"] != "test", "voice"]) & set(prepare.HELD_OUT)
    metrics = trained("spoken_digits", csv, tmp_path, epochs=15, early_stop=0)
    assert metrics["digit"]["accuracy"] >= 0.9  # 1.0 seen; 10 digits: chance is 0.1
