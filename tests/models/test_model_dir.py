"""Saved model directories: what loads, and the clear errors for what does not."""
import json
import shutil

import pytest
import torch
from synthetic import synthetic_frame, tiny_config
from safetensors.torch import save_file

from framework import Model
from framework.errors import ModelDirError
from framework.models.ecd import ECD
from framework.models.model_dir import METADATA, WEIGHTS, load_model_dir


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    model = Model(tiny_config(epochs=1))
    model.train(synthetic_frame(100), output_dir=None)
    directory = tmp_path_factory.mktemp("saved") / "model"
    model.save(directory)
    return model, directory


def copy_of(directory, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(directory, target)
    return target


def test_a_saved_model_loads_with_its_config_metadata_and_weights(saved):
    model, directory = saved
    config, metadata, module = load_model_dir(directory)
    assert config == model.config and metadata == model.metadata
    assert isinstance(module, ECD)
    for name, value in model.module.state_dict().items():
        torch.testing.assert_close(module.state_dict()[name], value.cpu(), rtol=0, atol=0)


def test_saving_again_replaces_the_directory_whole(saved, tmp_path):
    model, directory = saved
    target = copy_of(directory, tmp_path)
    (target / "stale.txt").write_text("left from before")
    model.save(target)
    assert not (target / "stale.txt").exists()
    assert sorted(p.name for p in target.iterdir()) == ["config.yaml", METADATA, WEIGHTS]


def test_a_missing_directory(tmp_path):
    with pytest.raises(ModelDirError, match="does not exist"):
        Model.load(tmp_path / "nope")


def test_a_directory_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelDirError) as caught:
        Model.load(tmp_path)
    assert "is not a saved model: it lacks config.yaml, training_set_metadata.json, weights.safetensors" \
        in str(caught.value)


def test_a_model_saved_by_a_newer_framework_is_refused(saved, tmp_path):
    _, directory = saved
    target = copy_of(directory, tmp_path)
    metadata = json.loads((target / METADATA).read_text())
    metadata["framework_version"] = "99.0.0"
    (target / METADATA).write_text(json.dumps(metadata))
    with pytest.raises(ModelDirError, match="was saved by framework 99.0.0, newer than this framework"):
        Model.load(target)


def test_unreadable_metadata(saved, tmp_path):
    target = copy_of(saved[1], tmp_path)
    (target / METADATA).write_text("{not json")
    with pytest.raises(ModelDirError, match="has an unreadable file"):
        Model.load(target)


def test_damaged_weights(saved, tmp_path):
    target = copy_of(saved[1], tmp_path)
    (target / WEIGHTS).write_bytes(b"\x00" * 64)
    with pytest.raises(ModelDirError, match="could not be read"):
        Model.load(target)


def test_weights_of_another_model(saved, tmp_path):
    target = copy_of(saved[1], tmp_path)
    save_file({"something.else": torch.zeros(2)}, str(target / WEIGHTS))
    with pytest.raises(ModelDirError, match="does not match the model"):
        Model.load(target)


def test_a_saved_config_this_version_cannot_read(saved, tmp_path):
    target = copy_of(saved[1], tmp_path)
    (target / "config.yaml").write_text("input_features: []\noutput_features: []\n")
    with pytest.raises(ModelDirError, match="has a config this version cannot read"):
        Model.load(target)
