"""`framework train --num-gpus N` re-runs the same command under the DeepSpeed launcher (without the flag,
so no process launches again), and refuses what could not work before starting anything."""
import os
import subprocess
import sys
from unittest import mock

import pytest
import yaml

from framework.cli import main
from synthetic import synthetic_frame, tiny_config


def write(tmp_path, **trainer):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config(device="cpu", epochs=1, **trainer)))
    synthetic_frame(80).to_csv(tmp_path / "train.csv", index=False)
    return path


def test_num_gpus_runs_the_command_under_the_deepspeed_launcher(tmp_path):
    path = write(tmp_path, strategy="deepspeed")
    args = ["train", "--config", str(path), "--dataset", str(tmp_path / "train.csv"), "--num-gpus", "2",
            "--no-progress"]
    with mock.patch("subprocess.run", return_value=subprocess.CompletedProcess([], 0)) as run:
        assert main(args) == 0
    command = run.call_args.args[0]
    assert command[:4] == [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus"] and command[4] == "2"
    port = command[command.index("--master_port") + 1]
    assert port.isdigit() and int(port) > 0
    assert command[command.index("--module"):] == ["--module", "framework", "train", "--config", str(path),
                                                   "--dataset", str(tmp_path / "train.csv"), "--no-progress"]
    assert "--no_local_rank" in command


def test_num_gpus_refusals(tmp_path, capsys, monkeypatch):
    args = ["train", "--config", str(write(tmp_path)), "--dataset", str(tmp_path / "train.csv"), "--num-gpus", "2"]
    with mock.patch("subprocess.run") as run:
        assert main(args) == 2
        assert "--num-gpus 2 needs trainer.strategy ddp or deepspeed; it is 'local'" in capsys.readouterr().err
        failing = subprocess.CompletedProcess([], 1)
        run.return_value = failing
        args[2] = str(write(tmp_path, strategy="ddp"))
        assert main(args) == 2
        assert "the 2 training processes ended with exit status 1" in capsys.readouterr().err
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert main(args) == 2
        assert "already runs under a launcher" in capsys.readouterr().err
    assert run.call_count == 1


def test_launchers_local_rank_argument_is_accepted(tmp_path):
    """`deepspeed --num_gpus N -m framework train ...` appends --local_rank=K to each process's arguments."""
    from framework.cli import _parser

    args = _parser().parse_args(["train", "--config", "c.yaml", "--dataset", "d.csv", "--local_rank=1"])
    assert args.local_rank == 1


@pytest.mark.slow
def test_num_gpus_end_to_end_on_cpus(tmp_path):
    """Two processes over gloo through the real launcher, without DeepSpeed compiling its shared-memory
    comm op (inference only; minutes of C++ on a small machine, and a hang where the CPU lacks its ISA)."""
    path = write(tmp_path, strategy="deepspeed", batch_size=16)
    extensions = tmp_path / "torch_extensions"
    result = subprocess.run([sys.executable, "-m", "framework", "train", "--config", str(path), "--dataset",
                             str(tmp_path / "train.csv"), "--num-gpus", "2", "--output-dir", str(tmp_path / "out"),
                             "--experiment-name", "e2e", "--no-progress"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TORCH_EXTENSIONS_DIR": str(extensions)})
    assert result.returncode == 0, result.stderr[-4000:]
    assert not extensions.exists() or not any(extensions.iterdir())
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["e2e_0"]
    assert (tmp_path / "out" / "e2e_0" / "model" / "weights.safetensors").is_file()
