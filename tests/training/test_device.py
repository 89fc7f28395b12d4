"""Devices and precisions. The GPU tests run where CUDA is present and are skipped elsewhere."""
import pandas as pd
import pytest
import torch

from framework import Model
from framework.errors import FrameworkError
from framework.training.device import resolve_device


def test_auto_picks_cuda_only_when_present():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_a_name_that_is_not_a_device():
    with pytest.raises(FrameworkError, match="trainer.device 'gpu0' is not a device"):
        resolve_device("gpu0")


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_training_on_the_gpu_in_each_precision(make_frame, make_config, precision):
    config = make_config(epochs=10, device="cuda", precision=precision)
    result = Model(config).train(make_frame(400), output_dir=None)
    assert result.test_metrics["label"]["accuracy"] >= 0.85


@pytest.mark.gpu
def test_a_gpu_trained_model_predicts_the_same_on_the_cpu(make_frame, make_config, tmp_path):
    model = Model(make_config(epochs=3, device="cuda"))
    model.train(make_frame(200), output_dir=None)
    frame = make_frame(50, seed=1)
    on_gpu = model.predict(frame)
    model.save(tmp_path / "model")
    loaded = Model.load(tmp_path / "model")
    loaded.config["trainer"]["device"] = "cpu"
    pd.testing.assert_frame_equal(loaded.predict(frame), on_gpu, check_exact=False, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_resume_on_the_gpu_continues_the_run(make_frame, make_config, tmp_path):
    frame = make_frame(200)
    first = Model(make_config(epochs=2, device="cuda")).train(frame, output_dir=tmp_path)
    again = Model(make_config(epochs=2, device="cuda")).train(frame, output_dir=tmp_path, resume=True)
    assert again.output_dir == first.output_dir
    assert again.training_statistics == first.training_statistics


@pytest.mark.multi_gpu
def test_training_on_the_second_gpu(make_frame, make_config):
    model = Model(make_config(epochs=2, device="cuda:1"))
    model.train(make_frame(200), output_dir=None)
    assert next(model.module.parameters()).device == torch.device("cuda", 1)


def test_a_gpu_index_beyond_the_devices_present(make_frame, make_config):
    index = torch.cuda.device_count() if torch.cuda.is_available() else 0
    expected = "only" if torch.cuda.is_available() else "no CUDA device is available"
    with pytest.raises(FrameworkError, match=expected):
        Model(make_config(device=f"cuda:{index}")).train(make_frame(50), output_dir=None)
