"""A checkpoint never runs code: a pickle with a payload is refused, and the payload does not run."""
import os
import pickle

import pytest
import torch

from framework.errors import FrameworkError
from framework.training.checkpoints import load_checkpoint, save_checkpoint


class Payload:
    def __reduce__(self):
        return (os.system, ("touch payload_ran",))


def test_a_crafted_pickle_is_refused_and_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(tmp_path / "latest", model, optimizer, None, {"epoch": 1})
    (tmp_path / "latest" / "training_state.pt").write_bytes(pickle.dumps({"optimizer": Payload()}, protocol=2))
    with pytest.raises(FrameworkError, match="cannot be resumed from"):
        load_checkpoint(tmp_path / "latest", model, optimizer, None)
    assert not (tmp_path / "payload_ran").exists()


def test_a_saved_checkpoint_round_trips(tmp_path):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    save_checkpoint(tmp_path / "latest", model, optimizer, None, {"epoch": 3})
    restored = torch.nn.Linear(2, 1)
    restored_optimizer = torch.optim.Adam(restored.parameters())
    assert load_checkpoint(tmp_path / "latest", restored, restored_optimizer, None) == {"epoch": 3}
    torch.testing.assert_close(restored.weight, model.weight)
    assert restored_optimizer.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
