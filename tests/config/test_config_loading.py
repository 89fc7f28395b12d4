"""Loading configs from YAML files, YAML text paths and dicts."""
import pytest
import yaml

from framework.config import load_config
from framework.errors import ConfigError

CONFIG = {
    "input_features": [{"name": "x", "type": "number"}],
    "output_features": [{"name": "y", "type": "binary"}],
    "trainer": {"epochs": 7},
}


def test_a_yaml_file_resolves_like_the_same_dict(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    from_file = load_config(path)
    assert from_file == load_config(CONFIG)
    assert from_file["trainer"]["epochs"] == 7
    assert load_config(str(path)) == from_file  # a str path too


def test_a_missing_file_is_a_config_error_naming_it(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"config file '{path}' does not exist"


def test_invalid_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("input_features: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(path)


def test_a_yaml_file_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="a config must be a mapping of sections, got list"):
        load_config(path)


def test_a_saved_resolved_config_loads_back_to_itself(tmp_path):
    """The resolved config is what is saved beside a model; reading it back changes nothing."""
    from framework.models.model_dir import dump_config

    resolved = load_config(CONFIG)
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(resolved))
    assert load_config(path) == resolved
