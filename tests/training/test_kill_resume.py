"""A training process killed with SIGKILL at random moments, resumed each time, ends exactly where an
uninterrupted run ends (bit-exact on the CPU), and nothing on disk is ever half-written."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import yaml

from framework.models.model_dir import load_model_dir
from framework.training.checkpoints import has_checkpoint

CONFIG = {
    "input_features": [{"name": "x", "type": "number"}, {"name": "color", "type": "category"}],
    "output_features": [{"name": "label", "type": "binary"}],
    "combiner": {"num_fc_layers": 2, "output_size": 16, "dropout": 0.2},
    "trainer": {"epochs": 30, "batch_size": 16, "steps_per_checkpoint": 10, "early_stop": 0, "progress_bar": False},
}


def _command(workspace, output, resume):
    args = [sys.executable, "-m", "framework", "train", "--config", "config.yaml", "--dataset", "data.csv",
            "--output-dir", output, "--experiment-name", "run", "--cache-dir", f"cache_{output}", "--no-progress"]
    return args + (["--resume"] if resume else [])


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _assert_loadable(run_dir):
    """Whatever exists after a kill is whole: checkpoints, statistics, the model."""
    latest = run_dir / "checkpoints" / "latest"
    if latest.exists() or (run_dir / "checkpoints" / ".latest.old").exists():
        assert has_checkpoint(latest)
        json.loads((latest / "trainer_state.json").read_text())
        safetensors.torch.load_file(latest / "model.safetensors")
    if (run_dir / "training_statistics.json").exists():
        json.loads((run_dir / "training_statistics.json").read_text())
    if (run_dir / "model").exists():
        load_model_dir(run_dir / "model")


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_matches_an_uninterrupted_run(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=1600)
    color = rng.choice(["red", "green", "blue"], size=1600)
    pd.DataFrame({"x": x, "color": color, "label": (x > 0.3) ^ (color == "red")}).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))

    subprocess.run(_command(tmp_path, "reference", False), cwd=tmp_path, env=_env(), check=True, capture_output=True)

    delays = random.Random(1)
    kills = 0
    resume = False
    for _ in range(12):
        process = subprocess.Popen(_command(tmp_path, "killed", resume), cwd=tmp_path, env=_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delays.uniform(1.5, 4.0))  # python + torch start-up takes about 1.5 s here
        if process.poll() is not None:
            assert process.returncode == 0, process.stderr.read().decode()
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        resume = True
        for run_dir in (tmp_path / "killed").glob("run_*"):
            _assert_loadable(run_dir)
    else:
        subprocess.run(_command(tmp_path, "killed", True), cwd=tmp_path, env=_env(), check=True, capture_output=True)
    assert kills >= 2, "the run finished before it could be killed twice; lengthen it"
    assert not (tmp_path / "killed" / "run_1").exists()  # every restart resumed the same run

    reference, killed = tmp_path / "reference" / "run_0", tmp_path / "killed" / "run_0"
    for name in ("training_statistics.json", "test_metrics.json"):
        assert json.loads((killed / name).read_text()) == json.loads((reference / name).read_text())
    expected = safetensors.torch.load_file(reference / "model" / "weights.safetensors")
    actual = safetensors.torch.load_file(killed / "model" / "weights.safetensors")
    assert expected.keys() == actual.keys()
    for key in expected:
        assert (expected[key] == actual[key]).all(), key
