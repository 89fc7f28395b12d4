"""trainer.nonfinite_loss: skip under several processes: a batch is skipped by all of them when any one
sees a non-finite loss, or the others would step (and wait in collectives) while it does not."""
import json
import textwrap

import pytest

from launching import HERE, free_port

SCRIPT = textwrap.dedent('''
    import json, sys
    import torch
    from framework.config import load_config
    from framework.training import distributed
    from framework.training.strategies import build_strategy
    from synthetic import tiny_config

    settings = load_config(tiny_config(device="cpu", strategy=sys.argv[1]))["trainer"]
    distributed.setup(settings)
    strategy = build_strategy(settings, torch.device("cpu"))
    nan_on = int(sys.argv[2])  # the rank whose loss is NaN (-1: none)
    loss = torch.tensor(float("nan") if distributed.rank() == nan_on else 0.5)
    with open(f"rank{distributed.rank()}.json", "w") as out:  # one file each: their prints would interleave
        json.dump({"rank": distributed.rank(), "all_finite": strategy.all_finite(loss)}, out)
    torch.distributed.destroy_process_group()
''')


@pytest.mark.parametrize("strategy", ["ddp", "deepspeed"])
def test_every_process_agrees_on_skipping_a_batch(strategy, tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "agree.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    for nan_on, expected in ((1, False), (0, False), (-1, True)):
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                   "127.0.0.1", "--master_port", str(free_port()), str(script), strategy, str(nan_on)]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150)
        assert result.returncode == 0, result.stderr[-4000:]
        answers = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
        assert sorted(a["rank"] for a in answers) == [0, 1]
        assert all(a["all_finite"] is expected for a in answers), (nan_on, answers)
