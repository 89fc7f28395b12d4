"""ZeRO 1, 2 and 3 (and DDP) in one process (gloo, CPU): the same training as the local strategy, a saved
model that Model.load reads back like any other, and a DeepSpeed checkpoint that resumes to the
uninterrupted result."""
import json
from unittest import mock

import pytest
import torch

from framework import Model
from framework.training.strategies.deepspeed import DeepSpeedStrategy

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # torch's notes on the collectives DeepSpeed calls
TOLERANCE = dict(rtol=1e-4, atol=1e-5)  # fp32: only the order of DeepSpeed's flat-buffer arithmetic differs


class Interrupted(Exception):
    """Stands in for a kill right after a checkpoint was written."""


def config(make_config, stage=None, **trainer):
    strategy = {} if stage is None else {"strategy": "deepspeed", "deepspeed": {"zero_stage": stage}}
    raw = make_config(**{"epochs": 3, "early_stop": 0, "device": "cpu", "max_grad_norm": 1.0, **strategy, **trainer})
    raw["combiner"]["dropout"] = 0.2  # consumes the RNG, so resuming must restore it
    return raw


@pytest.fixture(scope="module")
def frame():
    from synthetic import synthetic_frame

    return synthetic_frame(160)


@pytest.fixture(scope="module")
def local_run(frame, tmp_path_factory):
    from synthetic import tiny_config

    model = Model(config(tiny_config))
    return model, model.train(frame, output_dir=tmp_path_factory.mktemp("local"))


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_zero_trains_saves_loads_and_resumes_like_local(stage, make_config, frame, local_run, tmp_path):
    local, local_result = local_run
    model = Model(config(make_config, stage, steps_per_checkpoint=2))
    result = model.train(frame, output_dir=tmp_path / "full")

    # the same losses, epoch by epoch, as one process without DeepSpeed
    for split in ("train", "validation"):
        torch.testing.assert_close(result.training_statistics[split]["combined"]["loss"],
                                   local_result.training_statistics[split]["combined"]["loss"], **TOLERANCE)
    # consolidated into the normal layout: whole fp32 tensors, loaded like a locally trained model
    assert sorted(p.name for p in (result.output_dir / "model").iterdir()) == [
        "config.yaml", "training_set_metadata.json", "weights.safetensors"]
    for name, value in model.module.state_dict().items():
        assert value.dtype == local.module.state_dict()[name].dtype and value.numel() > 0, name
        torch.testing.assert_close(value, local.module.state_dict()[name], **TOLERANCE)
    loaded = Model.load(result.output_dir / "model")
    rows = frame.head(40)
    assert loaded.predict(rows).equals(model.predict(rows))
    checkpoint = result.output_dir / "checkpoints" / "latest"
    assert (checkpoint / "deepspeed" / "state").is_dir() and (checkpoint / "rng_0.pt").is_file()

    # killed after the third checkpoint (step 6, inside epoch 2), then resumed from the DeepSpeed checkpoint
    real, written = DeepSpeedStrategy.save_checkpoint, []

    def save_then_stop(self, *args, **kwargs):
        real(self, *args, **kwargs)
        written.append(args[0])
        if len(written) == 3:
            raise Interrupted

    with mock.patch.object(DeepSpeedStrategy, "save_checkpoint", save_then_stop), pytest.raises(Interrupted):
        Model(config(make_config, stage, steps_per_checkpoint=2)).train(frame, output_dir=tmp_path / "cut")
    run_dir = tmp_path / "cut" / "experiment_0"
    state = json.loads((run_dir / "checkpoints" / "latest" / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["batch_in_epoch"] > 0 and not (run_dir / "model").exists()
    resumed = Model(config(make_config, stage, steps_per_checkpoint=2))
    resumed_result = resumed.train(frame, output_dir=tmp_path / "cut", resume=True)
    assert resumed_result.output_dir == run_dir
    assert json.dumps(resumed_result.training_statistics) == json.dumps(result.training_statistics)
    for name, value in resumed.module.state_dict().items():
        torch.testing.assert_close(value, model.module.state_dict()[name], rtol=0, atol=0)


def test_bf16_keeps_fp32_master_weights_in_the_saved_model(make_config, frame, tmp_path):
    model = Model(config(make_config, 2, precision="bf16", epochs=2))
    result = model.train(frame, output_dir=tmp_path)
    state = model.module.state_dict()
    assert {value.dtype for value in state.values() if value.is_floating_point()} == {torch.float32}
    assert Model.load(result.output_dir / "model").predict(frame.head(20)).equals(model.predict(frame.head(20)))


def test_in_memory_training_under_zero3_writes_nothing(make_config, frame, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Model(config(make_config, 3, epochs=2))
    result = model.train(frame, output_dir=None)
    assert result.output_dir is None and not list(tmp_path.iterdir())
    assert all(value.numel() > 0 for value in model.module.state_dict().values())  # the best weights, whole
    assert len(model.predict(frame.head(5))) == 5


def test_ddp_in_one_process_trains_like_local(make_config, frame, local_run):
    _, local_result = local_run
    result = Model(config(make_config, strategy="ddp")).train(frame, output_dir=None)
    torch.testing.assert_close(result.training_statistics["train"]["combined"]["loss"],
                               local_result.training_statistics["train"]["combined"]["loss"], rtol=1e-6, atol=1e-7)



def test_the_group_joined_for_training_is_destroyed_at_exit_and_a_callers_group_is_kept(make_config, frame):
    """A process exiting with gloo's threads alive can abort in interpreter shutdown, failing a finished run."""
    import torch.distributed as dist

    from framework.training import distributed

    if dist.is_initialized():
        distributed.leave()  # joined by the tests before
    raw, zero = config(make_config, strategy="ddp", epochs=1), config(make_config, 2, epochs=1)
    with mock.patch.object(distributed, "atexit") as atexit:
        register = atexit.register
        Model(zero).train(frame, output_dir=None)
        assert dist.is_initialized() and register.call_args.args == (distributed.leave_at_exit,)
        Model(raw).train(frame, output_dir=None)  # a second training in the same process uses the same group
        assert register.call_count == 1
        distributed.leave_at_exit()
        assert not dist.is_initialized()
        Model(zero).train(frame, output_dir=None)  # DeepSpeed's subgroups went with the group: it joins again
        assert register.call_count == 2
        distributed.leave()

        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
        try:
            Model(raw).train(frame, output_dir=None)
            assert register.call_count == 2  # the caller's group: theirs to end
        finally:
            distributed.leave()


def test_after_a_failed_training_the_group_is_left_to_the_launcher(make_config, frame, monkeypatch):
    """Destroying it waits on queued collectives, which would hang while the other processes wait in theirs."""
    import torch.distributed as dist

    from framework.training import distributed

    class Stop(Exception):
        pass

    class StopAfterAnEpoch:
        def on_epoch_end(self, epoch, statistics):
            raise Stop

    monkeypatch.setattr(distributed, "_failed", False)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)  # a peer that may wait in a collective
    try:
        with pytest.raises(Stop):
            Model(config(make_config, strategy="ddp", epochs=2)).train(frame, output_dir=None,
                                                                      callbacks=[StopAfterAnEpoch()])
        distributed.leave_at_exit()
        assert dist.is_initialized()
    finally:
        distributed.leave()
