"""A saved model directory: resolved config, preprocessing metadata and weights, nothing pickled."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from framework import atomic
from framework.config import load_config
from framework.errors import ConfigError, ModelDirError
from framework.version import __version__

if TYPE_CHECKING:
    from framework.models.ecd import ECD

CONFIG = "config.yaml"
METADATA = "training_set_metadata.json"
WEIGHTS = "weights.safetensors"
# any one of these makes a directory a saved model: ECD weights, an LLM's adapter or merged model
SAVED_WEIGHTS = (WEIGHTS, "adapter", "merged")


def dump_config(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)


def save_model_dir(directory: Path, config: dict, metadata: dict, module: ECD) -> None:
    from framework.models.weights import save_weights  # torch: loaded when a model is, not by check_model_dir

    with atomic.atomic_dir(directory) as tmp:
        (tmp / CONFIG).write_text(dump_config(config))
        (tmp / METADATA).write_text(json.dumps({"framework_version": __version__, "features": metadata}, indent=1))
        save_weights(module, tmp / WEIGHTS)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def check_model_dir(directory: Path, weights: tuple[str, ...] = (WEIGHTS,)) -> None:
    """Raises ModelDirError unless `directory` is what Model.save writes: config, metadata and one of
    `weights` (an ECD's weights file by default; SAVED_WEIGHTS accepts an LLM's adapter/ or merged/ too)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelDirError(f"model directory '{directory}' does not exist")
    missing = [name for name in (CONFIG, METADATA) if not (directory / name).is_file()]
    if not any((directory / name).is_file() if name == WEIGHTS else (directory / name).exists() for name in weights):
        missing.append(" or ".join(weights))
    if missing:
        raise ModelDirError(f"'{directory}' is not a saved model: it lacks {', '.join(missing)} "
                            "(pass the model/ folder of a run, or a folder written by Model.save)")


def load_model_dir(directory: Path) -> tuple[dict, dict, ECD]:
    from framework.models.ecd import ECD
    from framework.models.weights import load_weights

    directory = Path(directory)
    atomic.recover_dir(directory)
    check_model_dir(directory)
    try:
        saved = json.loads((directory / METADATA).read_text())
        config = yaml.safe_load((directory / CONFIG).read_text())
    except (ValueError, yaml.YAMLError) as error:
        raise ModelDirError(f"model directory '{directory}' has an unreadable file: {error}") from None
    version = str(saved.get("framework_version", "0"))
    if _version_tuple(version) > _version_tuple(__version__):
        raise ModelDirError(f"model in '{directory}' was saved by framework {version}, newer than this "
                            f"framework {__version__}; upgrade framework to load it")
    try:
        config = load_config(config)
    except ConfigError as error:
        raise ModelDirError(f"model directory '{directory}' has a config this version cannot read:\n{error}") from None
    module = ECD(_rebuilt_from_saved_weights(config), saved["features"])
    load_weights(module, directory / WEIGHTS)
    return config, saved["features"], module


def _rebuilt_from_saved_weights(config: dict) -> dict:
    """The config a saved model's modules are built from: settings that only choose initial weights
    (a word-vectors file) are dropped, because the saved weights replace them and the file may be gone."""
    rebuilt = copy.deepcopy(config)
    for feature in rebuilt["input_features"]:
        if (feature.get("encoder") or {}).get("pretrained_embeddings"):
            feature["encoder"]["pretrained_embeddings"] = None
    return rebuilt
