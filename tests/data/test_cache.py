"""The preprocessing cache: hits for the same data and settings, misses for any change, never
serves a corrupt entry."""
import os

import numpy as np
import pytest

from framework.config import load_config
from framework.data import cache
from framework.data.pipeline import prepare_training


def config(normalization="zscore", seed=42, cache_enabled=True) -> dict:
    return load_config({
        "input_features": [{"name": "x", "type": "number", "preprocessing": {"normalization": normalization}},
                           {"name": "color", "type": "category"}],
        "output_features": [{"name": "label", "type": "binary"}],
        "preprocessing": {"cache": cache_enabled},
        "seed": seed,
    })


def assert_same_splits(a, b):
    for split in ("train", "validation", "test"):
        assert set(a.splits[split].columns) == set(b.splits[split].columns)
        for name, values in a.splits[split].columns.items():
            np.testing.assert_array_equal(values, b.splits[split].columns[name])
    assert a.metadata == b.metadata


def entries(directory) -> list:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


def test_the_same_dataframe_twice_hits_the_cache(make_frame, tmp_path):
    frame = make_frame(120)
    first = prepare_training(config(), frame, cache_dir=tmp_path)
    second = prepare_training(config(), frame.copy(), cache_dir=tmp_path)
    assert not first.cache_hit and second.cache_hit
    assert_same_splits(first, second)
    assert len(entries(tmp_path)) == 1


def test_columns_no_feature_uses_do_not_change_the_key(make_frame, tmp_path):
    frame = make_frame(120)
    prepare_training(config(), frame, cache_dir=tmp_path)
    assert prepare_training(config(), frame.assign(unused=1), cache_dir=tmp_path).cache_hit


def test_a_changed_value_misses(make_frame, tmp_path):
    frame = make_frame(120)
    prepare_training(config(), frame, cache_dir=tmp_path)
    changed = frame.copy()
    changed.loc[17, "color"] = "purple"
    assert not prepare_training(config(), changed, cache_dir=tmp_path).cache_hit


@pytest.mark.parametrize("other", [config(normalization="minmax"), config(seed=7)])
def test_a_changed_setting_misses(make_frame, tmp_path, other):
    frame = make_frame(120)
    prepare_training(config(), frame, cache_dir=tmp_path)
    missed = prepare_training(other, frame, cache_dir=tmp_path)
    assert not missed.cache_hit
    assert len(entries(tmp_path)) == 2


def test_a_corrupted_cache_file_is_detected_and_rebuilt(make_frame, tmp_path):
    frame = make_frame(120)
    first = prepare_training(config(), frame, cache_dir=tmp_path)
    (entry,) = [tmp_path / name for name in entries(tmp_path)]
    train_file = entry / "train.parquet"
    data = bytearray(train_file.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: still parses perhaps, but the checksum differs
    train_file.write_bytes(bytes(data))

    rebuilt = prepare_training(config(), frame, cache_dir=tmp_path)
    assert not rebuilt.cache_hit
    assert_same_splits(first, rebuilt)
    again = prepare_training(config(), frame, cache_dir=tmp_path)
    assert again.cache_hit  # the rebuilt entry replaced the corrupt one
    assert_same_splits(first, again)


def test_a_partial_cache_entry_is_rebuilt(make_frame, tmp_path):
    frame = make_frame(120)
    prepare_training(config(), frame, cache_dir=tmp_path)
    (entry,) = [tmp_path / name for name in entries(tmp_path)]
    os.remove(entry / "test.parquet")
    assert not prepare_training(config(), frame, cache_dir=tmp_path).cache_hit
    assert prepare_training(config(), frame, cache_dir=tmp_path).cache_hit


def test_cache_false_writes_nothing(make_frame, tmp_path):
    frame = make_frame(120)
    prepare_training(config(cache_enabled=False), frame, cache_dir=tmp_path)
    assert not prepare_training(config(cache_enabled=False), frame, cache_dir=tmp_path).cache_hit
    assert entries(tmp_path) == []


def test_the_cache_dir_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FRAMEWORK_CACHE_DIR", str(tmp_path))
    assert cache.cache_root() == tmp_path / "datasets"
    assert cache.cache_root(tmp_path / "mine") == tmp_path / "mine"


def test_the_default_cache_is_under_the_session_tmp_dir(make_frame):
    """conftest points FRAMEWORK_CACHE_DIR at a tmp dir: tests never write to the user's cache."""
    root = cache.cache_root()
    assert ".cache" not in root.parts
    prepare_training(config(), make_frame(40, seed=11))
    assert root.is_dir() and entries(root)
