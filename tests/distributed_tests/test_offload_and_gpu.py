"""What needs compiled DeepSpeed ops or a GPU: optimizer offload (DeepSpeedCPUAdam, compiled on first use:
`slow`), fp16 and FusedAdam on one GPU, ZeRO across two GPUs, and a launch with more processes than GPUs."""
from unittest import mock

import pytest
import torch

from framework import Model
from framework.training.strategies import deepspeed as strategy_module

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def config(make_config, device="cpu", **trainer):
    return make_config(**{"epochs": 3, "early_stop": 0, "device": device, "strategy": "deepspeed", **trainer})


def spy_client_optimizer():
    """Records the optimizer handed to DeepSpeed."""
    chosen = []

    def record(*args):
        chosen.append(real(*args))
        return chosen[-1]

    real = strategy_module.client_optimizer
    return chosen, mock.patch.object(strategy_module, "client_optimizer", record)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_offloaded_optimizer_runs_cpu_adam_and_learns_like_torch_adam(stage, make_config, make_frame, tmp_path):
    frame = make_frame(160)
    local = Model(make_config(epochs=3, early_stop=0, device="cpu")).train(frame, output_dir=None)
    chosen, spy = spy_client_optimizer()
    offload = {"zero_stage": stage, "offload_optimizer": "cpu", **({"offload_param": "cpu"} if stage == 3 else {})}
    model = Model(config(make_config, deepspeed=offload))
    with spy:
        result = model.train(frame, output_dir=tmp_path)
    assert type(chosen[0]).__name__ == "DeepSpeedCPUAdam"
    torch.testing.assert_close(result.training_statistics["train"]["combined"]["loss"],
                               local.training_statistics["train"]["combined"]["loss"], rtol=1e-3, atol=1e-4)
    assert Model.load(result.output_dir / "model").predict(frame.head(20)).equals(model.predict(frame.head(20)))


@pytest.mark.gpu
def test_fp16_on_a_gpu_trains_and_saves_fp32_weights(make_config, make_frame, tmp_path):
    frame = make_frame(160)
    model = Model(config(make_config, "cuda", precision="fp16", deepspeed={"zero_stage": 2}))
    result = model.train(frame, output_dir=tmp_path)
    losses = result.training_statistics["train"]["combined"]["loss"]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert {v.dtype for v in model.module.state_dict().values() if v.is_floating_point()} == {torch.float32}
    loaded = Model.load(result.output_dir / "model")
    assert loaded.predict(frame.head(20))["label_predictions"].equals(model.predict(frame.head(20))["label_predictions"])


@pytest.mark.gpu
def test_fused_adam_on_a_gpu(make_config, make_frame):
    frame = make_frame(160)
    local = Model(make_config(epochs=3, early_stop=0, device="cuda")).train(frame, output_dir=None)
    chosen, spy = spy_client_optimizer()
    with spy:
        result = Model(config(make_config, "cuda", deepspeed={"zero_stage": 1, "fused_optimizer": True})).train(
            frame, output_dir=None)
    assert type(chosen[0]).__name__ == "FusedAdam"
    torch.testing.assert_close(result.training_statistics["train"]["combined"]["loss"],
                               local.training_statistics["train"]["combined"]["loss"], rtol=1e-3, atol=1e-4)


def _gpu_config(tmp_path, make_config, **trainer):
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config(make_config, "cuda", **trainer)))
    return path


@pytest.mark.multi_gpu
def test_zero3_across_two_gpus_matches_one_gpu(make_config, make_frame, tmp_path):
    import json

    from launching import torchrun

    frame = make_frame(160)
    frame.to_csv(tmp_path / "train.csv", index=False)
    one = Model(make_config(epochs=3, early_stop=0, device="cuda", batch_size=32)).train(
        str(tmp_path / "train.csv"), output_dir=None)
    path = _gpu_config(tmp_path, make_config, batch_size=16, deepspeed={"zero_stage": 3})
    torchrun(2, ["train", "--config", str(path), "--dataset", str(tmp_path / "train.csv"), "--output-dir",
                 str(tmp_path / "out"), "--experiment-name", "gpus"], cwd=tmp_path)
    statistics = json.loads((tmp_path / "out" / "gpus_0" / "training_statistics.json").read_text())
    torch.testing.assert_close(statistics["train"]["combined"]["loss"],
                               one.training_statistics["train"]["combined"]["loss"], rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
def test_more_processes_than_gpus_fails_with_a_clear_error(make_config, tmp_path):
    import subprocess
    import sys

    from launching import HERE, free_port

    path = _gpu_config(tmp_path, make_config)
    processes = torch.cuda.device_count() + 1
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                             "--master_port", str(free_port()), str(HERE / "multi_command.py"), "train", "--config",
                             str(path), "--dataset", str(tmp_path / "missing.csv")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode != 0
    assert f"{processes} processes were launched on this machine but it has {processes - 1} GPU" in result.stderr
