"""Shared test setup: an isolated preprocessing cache, offline Hugging Face, one CPU thread,
GPU markers that skip on machines without one, and small synthetic datasets."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything can import huggingface_hub

import numpy as np
import pandas as pd
import pytest
import torch

torch.set_num_threads(1)  # steady timings on 2-core CI machines


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """The preprocessing cache (read from FRAMEWORK_CACHE_DIR) lives in this session's tmp dir."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FRAMEWORK_CACHE_DIR", str(tmp_path_factory.mktemp("framework-cache")))
        yield


def pytest_collection_modifyitems(config, items):
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; torch.cuda is not available")
    skip_multi = pytest.mark.skip(reason=f"needs two or more CUDA GPUs; {gpus} available")
    for item in items:
        if "gpu" in item.keywords and gpus == 0:
            item.add_marker(skip_gpu)
        if "multi_gpu" in item.keywords and gpus < 2:
            item.add_marker(skip_multi)


def synthetic_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Inputs x, z (numbers), color (category), flag (binary) and targets that follow simple rules:

    label: x > 0.3 (binary), amount: 3x - 2z + small noise (number),
    tier: low / mid / high by thresholds on x (category).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    return pd.DataFrame({
        "x": x,
        "z": z,
        "color": rng.choice(["red", "green", "blue"], size=n),
        "flag": rng.random(n) < 0.5,
        "label": x > 0.3,
        "amount": 3 * x - 2 * z + rng.normal(scale=0.05, size=n),
        "tier": np.where(x < -0.5, "low", np.where(x < 0.5, "mid", "high")),
    })


@pytest.fixture
def make_frame():
    """A factory of synthetic DataFrames: make_frame(n=400, seed=0)."""
    return synthetic_frame


def tiny_config(inputs=("x", "z", "color"), outputs=(("label", "binary"),), **trainer) -> dict:
    """A config over the synthetic columns with a short, quiet trainer (settings overridable)."""
    types = {"x": "number", "z": "number", "color": "category", "flag": "binary"}
    return {
        "input_features": [{"name": name, "type": types[name]} for name in inputs],
        "output_features": [{"name": name, "type": kind} for name, kind in outputs],
        "combiner": {"type": "concat", "output_size": 32},
        "trainer": {"epochs": 3, "batch_size": 32, "learning_rate": 0.01, "progress_bar": False, **trainer},
    }


@pytest.fixture
def make_config():
    """A factory of configs over the synthetic columns: make_config(inputs, outputs, **trainer)."""
    return tiny_config
