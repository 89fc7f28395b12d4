"""Configs: load YAML or a dict, validate it whole, fill every default."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from framework.errors import ConfigError, Problem


def read_yaml(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ConfigError([Problem("", f"config file '{path}' does not exist")])
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError([Problem("", f"config file '{path}' is not valid YAML: {error}")]) from None


def load_config(source: Any) -> dict:
    """A resolved config from a dict, a YAML file path, or a YAML string."""
    from framework.config.resolve import resolve_config

    if isinstance(source, (str, os.PathLike)):
        source = read_yaml(source)
    return resolve_config(source)
