"""Shared test setup: an isolated preprocessing cache, offline Hugging Face, one CPU thread,
GPU markers that skip on machines without one, and small synthetic datasets."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before anything can import huggingface_hub

import pytest
import torch

from synthetic import synthetic_frame, tiny_config

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


@pytest.fixture
def make_frame():
    """A factory of synthetic DataFrames: make_frame(n=400, seed=0)."""
    return synthetic_frame


@pytest.fixture
def make_config():
    """A factory of configs over the synthetic columns: make_config(inputs, outputs, **trainer)."""
    return tiny_config
