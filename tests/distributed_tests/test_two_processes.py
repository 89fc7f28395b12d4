"""Two processes over gloo, started by torchrun: ZeRO 2, ZeRO 3 and DDP reach the loss one process reaches
with the same rows per step, and only the main process writes the run's files."""
import json

import pytest
import torch
import yaml

from launching import torchrun
from framework import Model
from synthetic import synthetic_frame, tiny_config

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def config(**trainer) -> dict:
    return tiny_config(**{"epochs": 3, "early_stop": 0, "device": "cpu", **trainer})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    synthetic_frame(160).to_csv(folder / "train.csv", index=False)
    return folder / "train.csv"


@pytest.fixture(scope="module")
def one_process(data, tmp_path_factory):
    """One process reading 32 rows a step: what 2 processes x 16 rows must reproduce."""
    return Model(config(batch_size=32)).train(str(data), output_dir=tmp_path_factory.mktemp("one"))


STRATEGIES = {  # name -> (trainer settings, what its checkpoint directory holds)
    "zero2": ({"strategy": "deepspeed", "deepspeed": {"zero_stage": 2}},
              ["deepspeed", "rng_0.pt", "rng_1.pt", "trainer_state.json"]),
    "zero3": ({"strategy": "deepspeed", "deepspeed": {"zero_stage": 3}},
              ["deepspeed", "rng_0.pt", "rng_1.pt", "trainer_state.json"]),
    "ddp": ({"strategy": "ddp"}, ["model.safetensors", "trainer_state.json", "training_state.pt"]),
}


def test_two_processes_match_one_and_only_the_main_one_writes(data, one_process, tmp_path):
    commands = []
    for name, (settings, _) in STRATEGIES.items():  # all runs in the same two processes: each start costs seconds
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config(batch_size=16, steps_per_checkpoint=3, **settings)))
        commands += ["::", "train", "--config", str(path), "--dataset", str(data), "--output-dir",
                     str(tmp_path / name), "--experiment-name", "two"]
    torchrun(2, commands[1:], cwd=tmp_path)
    for name, (_, checkpoint_files) in STRATEGIES.items():
        check_run(tmp_path / name, checkpoint_files, one_process)


def check_run(results, checkpoint_files: list[str], one_process) -> None:
    # one run directory (each process opening its own would have made two_0 and two_1), complete and clean
    assert [p.name for p in results.iterdir()] == ["two_0"]
    run_dir = results / "two_0"
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.yaml", "model", "test_metrics.json",
                                                         "training_statistics.json"]
    checkpoint = run_dir / "checkpoints" / "latest"
    assert sorted(p.name for p in checkpoint.iterdir()) == checkpoint_files
    assert not [p for p in run_dir.rglob(".*")]  # no staging or temporary copies left behind

    statistics = json.loads((run_dir / "training_statistics.json").read_text())
    reference = one_process.training_statistics
    assert statistics["steps"] == reference["steps"]  # 2 x 16 rows a step: as many steps as 1 x 32
    for split in ("train", "validation"):
        torch.testing.assert_close(statistics[split]["combined"]["loss"], reference[split]["combined"]["loss"],
                                   rtol=1e-4, atol=1e-5)
    # the consolidated model predicts like the one-process model
    rows = synthetic_frame(40, seed=1)
    two, one = Model.load(run_dir / "model"), Model.load(one_process.output_dir / "model")
    torch.testing.assert_close(two.predict(rows)["label_probability"].to_numpy(),
                               one.predict(rows)["label_probability"].to_numpy(), rtol=1e-4, atol=1e-5)
    expected = json.loads((one_process.output_dir / "test_metrics.json").read_text())
    assert json.loads((run_dir / "test_metrics.json").read_text())["combined"]["loss"] == pytest.approx(
        expected["combined"]["loss"], rel=1e-4)
