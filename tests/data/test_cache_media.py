"""The preprocessing cache over media and array cells: arrays (audio samples, vectors, pixels) are keyed
by their bytes, and a file a path names is keyed by its size and modification time, so a file rewritten
under the same name misses the cache."""
import os

import numpy as np
import pandas as pd
import pytest
import soundfile
from PIL import Image

import framework.data.pipeline as pipeline
from framework import Model
from framework.config import load_config
from framework.data import cache
from framework.data.pipeline import prepare_training

RATE = 8000


def sine(frequency: float, rng: np.random.Generator, seconds: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (rng.uniform(0.3, 0.9) * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 6))).astype(np.float32)


def pitches(n: int, seed: int = 0) -> pd.DataFrame:
    """Sines of two pitches as arrays of samples, one per row."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(["low", "high"], size=n)
    clips = [sine(300.0 if label == "low" else 1500.0, rng) for label in labels]
    return pd.DataFrame({"clip": clips, "pitch": labels})


def audio_config(**preprocessing) -> dict:
    return {"input_features": [{"name": "clip", "type": "audio",
                                "preprocessing": {"sample_rate": RATE, "type": "fbank", **preprocessing},
                                "encoder": {"type": "stacked_cnn", "num_filters": 4, "embedding_size": 4}}],
            "output_features": [{"name": "pitch", "type": "category"}],
            "trainer": {"epochs": 1, "batch_size": 16, "progress_bar": False}}


@pytest.fixture
def hits(monkeypatch):
    """Whether each preprocessing run Model.train made was served from the cache, in order."""
    seen = []

    def recording(*args, **kwargs):
        prepared = prepare(*args, **kwargs)
        seen.append(prepared.cache_hit)
        return prepared

    prepare = pipeline.prepare_training
    monkeypatch.setattr(pipeline, "prepare_training", recording)
    return seen


def test_an_audio_model_on_arrays_of_samples_trains_with_the_cache_and_hits_it_the_second_time(tmp_path, hits):
    frame = pitches(48)
    for _ in range(2):
        Model(audio_config()).train(frame, output_dir=None, cache_dir=tmp_path)
    assert hits == [False, True]
    assert len(list(tmp_path.iterdir())) == 1


def test_a_vector_column_of_arrays_trains_with_the_cache_and_hits_it_the_second_time(tmp_path, hits):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(60, 5))
    frame = pd.DataFrame({"v": list(values), "y": values[:, 0] > 0})
    config = {"input_features": [{"name": "v", "type": "vector"}], "output_features": [{"name": "y", "type": "binary"}],
              "trainer": {"epochs": 1, "progress_bar": False}}
    for _ in range(2):
        Model(config).train(frame.copy(), output_dir=None, cache_dir=tmp_path)
    assert hits == [False, True]
    lists = frame.assign(v=[row.tolist() for row in values])  # the same float64 numbers as lists key the same
    Model(config).train(lists, output_dir=None, cache_dir=tmp_path)
    assert hits[-1] is True


def key(frame: pd.DataFrame) -> str:
    return cache.fingerprint({"train": frame}, {})


def test_arrays_that_differ_in_one_value_deep_inside_have_different_keys():
    """numpy's repr elides the middle of a long array: only the bytes tell these apart."""
    wave = np.zeros(10_000, dtype=np.float32)
    changed = wave.copy()
    changed[5_000] = 1.0
    assert key(pd.DataFrame({"c": [wave, wave]})) != key(pd.DataFrame({"c": [wave, changed]}))
    assert key(pd.DataFrame({"c": [wave, None]})) != key(pd.DataFrame({"c": [changed, None]}))


@pytest.mark.parametrize("a, b", [
    (np.zeros(4, np.float32), np.zeros(4, np.float64)),  # same values, other dtype
    (np.zeros((2, 2), np.float32), np.zeros(4, np.float32)),  # same bytes, other shape
], ids=["dtype", "shape"])
def test_arrays_with_the_same_bytes_but_another_layout_have_different_keys(a, b):
    assert key(pd.DataFrame({"c": [a]})) != key(pd.DataFrame({"c": [b]}))


def write_wave(path, frequency: float, seed: int) -> None:
    soundfile.write(str(path), sine(frequency, np.random.default_rng(seed)), RATE, subtype="FLOAT")


def later_mtime(path) -> None:
    """A rewrite within the file system's timestamp granularity could keep the old time; move it on."""
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_rewriting_an_audio_file_at_the_same_path_misses_the_cache(tmp_path):
    paths = [tmp_path / f"clip{i}.wav" for i in range(24)]
    for i, path in enumerate(paths):
        write_wave(path, 300.0 if i % 2 else 1500.0, seed=i)
    frame = pd.DataFrame({"clip": [str(p) for p in paths], "pitch": ["low", "high"] * 12})
    config = load_config(audio_config())
    first = prepare_training(config, frame, cache_dir=tmp_path / "cache")
    assert prepare_training(config, frame, cache_dir=tmp_path / "cache").cache_hit
    write_wave(paths[3], 1500.0, seed=99)  # the same length, so the same size: only the time tells
    later_mtime(paths[3])
    again = prepare_training(config, frame, cache_dir=tmp_path / "cache")
    assert not first.cache_hit and not again.cache_hit


def test_rewriting_an_image_at_the_same_path_misses_the_cache(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    frame = pd.DataFrame({"image": [f"{i}.png" for i in range(20)], "y": [i % 2 == 0 for i in range(20)]})
    frame.to_csv(tmp_path / "images.csv", index=False)  # relative paths, read beside the CSV
    config = load_config({"input_features": [{"name": "image", "type": "image"}],
                          "output_features": [{"name": "y", "type": "binary"}]})
    first = prepare_training(config, tmp_path / "images.csv", cache_dir=tmp_path / "cache")
    assert prepare_training(config, tmp_path / "images.csv", cache_dir=tmp_path / "cache").cache_hit
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "5.png")
    later_mtime(tmp_path / "5.png")
    assert not first.cache_hit
    assert not prepare_training(config, tmp_path / "images.csv", cache_dir=tmp_path / "cache").cache_hit
