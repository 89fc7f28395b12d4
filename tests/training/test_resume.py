"""Resuming: a run interrupted after a checkpoint and resumed ends exactly where an uninterrupted
run with the same seed ends (same weights, same statistics, same test metrics) on the CPU."""
import json
from unittest import mock

import pytest
import torch

from framework.training import checkpoints
from framework import Model


class Interrupted(Exception):
    """Stands in for a kill right after a checkpoint was written."""


def config(make_config, **trainer):
    raw = make_config(**{"epochs": 5, "early_stop": 0, "device": "cpu", **trainer})
    raw["combiner"]["dropout"] = 0.2  # consumes the RNG, so its state must be restored too
    return raw


def interrupt_after_checkpoints(count: int):
    """Patches the trainer's checkpoint writer to raise once `count` checkpoints are complete."""
    real = checkpoints.save_checkpoint
    written = []

    def save_then_maybe_stop(*args, **kwargs):
        real(*args, **kwargs)
        written.append(args[0])
        if len(written) == count:
            raise Interrupted

    return mock.patch.object(checkpoints, "save_checkpoint", save_then_maybe_stop)


def assert_same_run(a: Model, a_result, b: Model, b_result):
    state_a, state_b = a.module.state_dict(), b.module.state_dict()
    assert state_a.keys() == state_b.keys()
    for name in state_a:
        torch.testing.assert_close(state_a[name], state_b[name], rtol=0, atol=0)
    assert a_result.training_statistics == b_result.training_statistics
    assert a_result.test_metrics == b_result.test_metrics


@pytest.mark.parametrize("trainer, checkpoints, mid_epoch", [
    ({}, 2, False),  # stopped after the checkpoint of epoch 2
    ({"steps_per_checkpoint": 2}, 2, True),  # 5 batches an epoch: stopped at step 4, inside epoch 1
])
def test_an_interrupted_run_resumes_to_the_same_result(make_frame, make_config, tmp_path, trainer, checkpoints,
                                                       mid_epoch):
    frame = make_frame(200)
    reference = Model(config(make_config, **trainer))
    reference_result = reference.train(frame, output_dir=tmp_path / "reference")

    with interrupt_after_checkpoints(checkpoints), pytest.raises(Interrupted):
        Model(config(make_config, **trainer)).train(frame, output_dir=tmp_path / "interrupted")
    run_dir = tmp_path / "interrupted" / "experiment_0"
    state = json.loads((run_dir / "checkpoints" / "latest" / "trainer_state.json").read_text())
    assert not state["finished"]
    assert (state["batch_in_epoch"] > 0) == mid_epoch
    assert not (run_dir / "model").exists()

    resumed = Model(config(make_config, **trainer))
    resumed_result = resumed.train(frame, output_dir=tmp_path / "interrupted", resume=True)
    assert resumed_result.output_dir == run_dir  # continued the same run, no new directory
    assert not (tmp_path / "interrupted" / "experiment_1").exists()
    assert_same_run(reference, reference_result, resumed, resumed_result)


def test_resuming_a_finished_run_trains_no_more(make_frame, make_config, tmp_path):
    frame = make_frame(200)
    first = Model(config(make_config))
    first_result = first.train(frame, output_dir=tmp_path)
    again = Model(config(make_config))
    again_result = again.train(frame, output_dir=tmp_path, resume=True)
    assert again_result.training_statistics == first_result.training_statistics
    assert_same_run(first, first_result, again, again_result)


def test_resume_without_a_previous_run_starts_a_new_one(make_frame, make_config, tmp_path):
    result = Model(config(make_config, epochs=1)).train(make_frame(100), output_dir=tmp_path, resume=True)
    assert result.output_dir == tmp_path / "experiment_0"
    assert result.training_statistics["epochs"] == [1]


def test_a_new_run_without_resume_gets_the_next_number(make_frame, make_config, tmp_path):
    frame = make_frame(100)
    Model(config(make_config, epochs=1)).train(frame, output_dir=tmp_path, experiment_name="demo")
    result = Model(config(make_config, epochs=1)).train(frame, output_dir=tmp_path, experiment_name="demo")
    assert result.output_dir == tmp_path / "demo_1"
