"""The bad-input corpus: each file in cases/ is one mistake a user makes, run through the CLI.

Every case must exit 2 with its specific message on stderr and no traceback. A case file holds:
`description`; `args` (the CLI arguments; `config.yaml`, `data.csv` and `model` name the files this
runner prepares); `config` (written to config.yaml; `base` merges in a valid config first);
`data` (CSV text written to data.csv; default: a small valid table); `files` (extra files:
name -> text); `model: true` (train a small model into `model/` first); `model_version` (rewrite that model's
framework_version); `cpu_only` (a mistake only without a GPU); `expect` (substrings of stderr).
"""
import json
from pathlib import Path

import pytest
import torch
import yaml

from framework.cli import main

CASES = sorted((Path(__file__).parent / "cases").glob("*.yaml"))
BASE_CONFIG = {
    "input_features": [{"name": "x", "type": "number"}, {"name": "color", "type": "category"}],
    "output_features": [{"name": "label", "type": "binary"}],
    "trainer": {"epochs": 1, "batch_size": 16, "progress_bar": False},
}
BASE_DATA = "x,color,label\n" + "".join(f"{i * 0.1},{'red' if i % 3 else 'blue'},{i % 2 == 0}\n" for i in range(40))


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case_file", CASES, ids=lambda p: p.stem)
def test_case(case_file, tmp_path, monkeypatch, capsys):
    case = yaml.safe_load(case_file.read_text())
    if case.get("cpu_only") and torch.cuda.is_available():
        pytest.skip("a mistake only on a machine without a GPU")
    monkeypatch.chdir(tmp_path)
    if case.get("model"):
        (tmp_path / "train.yaml").write_text(yaml.safe_dump(BASE_CONFIG))
        (tmp_path / "train.csv").write_text(BASE_DATA)
        assert main(["train", "--config", "train.yaml", "--dataset", "train.csv", "--experiment-name", "m",
                     "--no-progress"]) == 0
        (tmp_path / "results" / "m_0" / "model").rename(tmp_path / "model")
        capsys.readouterr()
    if "config_text" in case:
        (tmp_path / "config.yaml").write_text(case["config_text"])
    else:
        config = case.get("config", {})
        if case.get("base", True) and isinstance(config, dict):
            config = _merge(BASE_CONFIG, config)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    data = case.get("data", BASE_DATA)
    (tmp_path / "data.csv").write_bytes(data.encode("latin-1") if case.get("latin1") else data.encode())
    for name, text in case.get("files", {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    if "model_version" in case:  # a model saved by another framework version
        metadata_file = tmp_path / "model" / "training_set_metadata.json"
        metadata = json.loads(metadata_file.read_text())
        metadata["framework_version"] = case["model_version"]
        metadata_file.write_text(json.dumps(metadata))
    assert main(case["args"]) == 2, case["description"]
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for expected in case["expect"] if isinstance(case["expect"], list) else [case["expect"]]:
        assert expected in err, f"{case['description']}: {expected!r} not in {err!r}"
