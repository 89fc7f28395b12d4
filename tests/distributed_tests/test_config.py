"""trainer.strategy / trainer.deepspeed: every mistake is a config error with its key path, found before any
data is read; a raw DeepSpeed JSON only adds to the trainer's settings, and a conflict names both values."""
import json
from unittest import mock

import pytest
import torch

from framework import Model
from framework.config import load_config
from framework.errors import ConfigError, FrameworkError
from framework.training.strategies.deepspeed import deepspeed_config


def problems(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_config(config)
    return [str(problem) for problem in error.value.problems]


def test_defaults_fill_the_section(make_config):
    trainer = load_config(make_config(strategy="deepspeed"))["trainer"]
    assert trainer["deepspeed"] == {"zero_stage": 2, "offload_optimizer": None, "offload_param": None,
                                    "nvme_path": None, "fused_optimizer": False, "config_file": None, "config": None}
    assert load_config(make_config())["trainer"]["strategy"] == "local"


@pytest.mark.parametrize("section, expected", [
    ({"zero_stage": 4}, "trainer.deepspeed.zero_stage: must be greater than or equal to 0 and less than or equal to 3"),
    ({"zero_stage": -1}, "trainer.deepspeed.zero_stage: must be greater than or equal to 0"),
    ({"zero_stage": 3, "offload_param": "nvme"}, "trainer.deepspeed.nvme_path: required when offloading to nvme"),
    ({"zero_stage": 2, "offload_optimizer": "nvme"}, "trainer.deepspeed.nvme_path: required when offloading to nvme"),
    ({"zero_stage": 2, "offload_param": "cpu"}, "trainer.deepspeed.offload_param: needs zero_stage 3"),
    ({"zero_stage": 0, "offload_optimizer": "cpu"}, "trainer.deepspeed.offload_optimizer: needs zero_stage 1, 2 or 3"),
    ({"zero_stage": 2, "offload_optimizer": "disk"}, "trainer.deepspeed.offload_optimizer: must be one of"),
    ({"zero_stages": 2}, "trainer.deepspeed.zero_stages: unknown key; did you mean 'zero_stage'?"),
])
def test_bad_deepspeed_settings_name_their_key(make_config, section, expected):
    found = problems(make_config(strategy="deepspeed", deepspeed=section))
    assert any(problem.startswith(expected) for problem in found), found


def test_a_deepspeed_section_needs_the_deepspeed_strategy(make_config):
    assert problems(make_config(strategy="ddp", deepspeed={"zero_stage": 2}))[0].startswith(
        "trainer.deepspeed: applies to trainer.strategy deepspeed; strategy is 'ddp'")
    assert problems(make_config(strategy="horovod"))[0].startswith("trainer.strategy: must be one of")


def test_raw_json_conflicts_name_both_values(make_config, tmp_path):
    raw = {"train_micro_batch_size_per_gpu": 16, "gradient_accumulation_steps": 4, "gradient_clipping": 2.0,
           "bf16": {"enabled": True}, "zero_optimization": {"stage": 3}, "optimizer": {"type": "Adam"},
           "train_batch_size": 40}
    found = problems(make_config(strategy="deepspeed", max_grad_norm=1.0, deepspeed={"zero_stage": 1, "config": raw}))
    assert found == [
        "trainer.deepspeed.config.optimizer: the optimizer comes from trainer.optimizer; remove it (got {'type': 'Adam'})",
        "trainer.deepspeed.config.train_micro_batch_size_per_gpu: is 16 but trainer.batch_size is 32; set it in one "
        "place (got 16)",
        "trainer.deepspeed.config.gradient_accumulation_steps: is 4 but trainer.gradient_accumulation_steps is 1; set "
        "it in one place (got 4)",
        "trainer.deepspeed.config.gradient_clipping: is 2.0 but trainer.max_grad_norm is 1.0; set it in one place "
        "(got 2.0)",
        "trainer.deepspeed.config.bf16.enabled: is True but trainer.precision is 'fp32'; set it in one place (got True)",
        "trainer.deepspeed.config.train_batch_size: 40 is not a multiple of trainer.batch_size x "
        "gradient_accumulation_steps (32), so no number of processes gives it (got 40)",
        "trainer.deepspeed.config.zero_optimization.stage: is 3 but trainer.deepspeed.zero_stage gives 1; set it in "
        "one place (got 3)",
    ]
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"train_micro_batch_size_per_gpu": 16}))
    found = problems(make_config(strategy="deepspeed", deepspeed={"config_file": str(path)}))
    assert found == [f"trainer.deepspeed.config_file: train_micro_batch_size_per_gpu in '{path}': is 16 but "
                     f"trainer.batch_size is 32; set it in one place (got '{path}')"]


def test_raw_json_file_is_read_once_and_kept_in_the_resolved_config(make_config, tmp_path):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"train_micro_batch_size_per_gpu": "auto", "zero_optimization": {
        "stage": 3, "overlap_comm": False}, "wall_clock_breakdown": False}))
    trainer = load_config(make_config(strategy="deepspeed", deepspeed={"config_file": str(path)}))["trainer"]
    section = trainer["deepspeed"]
    assert section["zero_stage"] == 3 and section["config_file"] is None  # the file's stage, its contents inline
    path.unlink()  # a saved or resumed config no longer needs the file
    again = load_config(make_config(strategy="deepspeed", deepspeed=section))["trainer"]
    assert again["deepspeed"] == section
    merged = deepspeed_config(again, world_size=2)
    assert merged["train_micro_batch_size_per_gpu"] == 32 and merged["train_batch_size"] == 64
    assert merged["zero_optimization"] == {"stage": 3, "overlap_comm": False}
    assert merged["wall_clock_breakdown"] is False and merged["bf16"] == {"enabled": False}

    for bad, message in ((tmp_path / "missing.json", "does not exist"), (tmp_path / "bad.json", "is not valid JSON")):
        if bad.name == "bad.json":
            bad.write_text("{not json")
        found = problems(make_config(strategy="deepspeed", deepspeed={"config_file": str(bad)}))
        assert found[0].startswith("trainer.deepspeed.config_file:") and message in found[0], found


def test_train_batch_size_is_checked_against_the_processes(make_config):
    trainer = load_config(make_config(strategy="deepspeed", deepspeed={"config": {"train_batch_size": 64}}))["trainer"]
    assert deepspeed_config(trainer, world_size=2)["train_batch_size"] == 64
    with pytest.raises(FrameworkError, match=r"train_batch_size 64 in the raw DeepSpeed config disagrees with "
                                             r"trainer.batch_size 32 x gradient_accumulation_steps 1 x 1 processes = 32"):
        deepspeed_config(trainer, world_size=1)


def test_fp16_on_a_cpu_is_refused_before_any_data(make_config, make_frame):
    model = Model(make_config(strategy="deepspeed", precision="fp16", device="cpu"))
    with mock.patch("framework.data.pipeline.prepare_training") as prepare, \
            pytest.raises(FrameworkError, match="trainer.precision fp16 needs a CUDA GPU and this run is on cpu"):
        model.train(make_frame(50), output_dir=None)
    prepare.assert_not_called()


def test_a_missing_deepspeed_install_says_how_to_install_it(make_config, make_frame):
    import importlib.util

    real = importlib.util.find_spec
    hidden = mock.patch("importlib.util.find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    model = Model(make_config(strategy="deepspeed", device="cpu"))
    with hidden, pytest.raises(FrameworkError, match=r"pip install framework\[deepspeed\]"):
        model.train(make_frame(50), output_dir=None)


def test_a_local_strategy_under_a_launcher_is_refused(make_config, make_frame, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(FrameworkError, match="2 processes were launched but trainer.strategy is 'local'"):
        Model(make_config(device="cpu")).train(make_frame(50), output_dir=None)


def test_more_processes_than_gpus_is_a_clear_error(make_config, monkeypatch):
    from framework.training import distributed

    for name, value in {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "3", "LOCAL_WORLD_SIZE": "4",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    settings = load_config(make_config(strategy="deepspeed", device="cuda"))["trainer"]
    with mock.patch.object(distributed, "initialized", lambda: False), \
            pytest.raises(FrameworkError, match="4 processes were launched on this machine but it has 2 GPUs; launch "
                                                "at most 2 per machine"):
        distributed.setup(settings)
