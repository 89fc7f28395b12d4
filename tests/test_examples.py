"""Every shipped example stays runnable: its config validates and its dataset has the columns it names."""
from pathlib import Path

import pytest

from framework import Model
from framework.config import load_config
from framework.data.readers import READERS, read_dataset

EXAMPLES = sorted(p.parent for p in (Path(__file__).parent.parent / "examples").glob("*/config.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_config_and_data_agree(example):
    config = load_config(example / "config.yaml")
    data = [p for p in example.iterdir() if p.suffix in READERS]
    assert data, f"{example} ships no dataset"
    columns = set(read_dataset(data[0]).columns)
    for feature in config["input_features"] + config["output_features"]:
        assert feature["column"] in columns


def test_titanic_example_learns(tmp_path):
    example = Path(__file__).parent.parent / "examples" / "titanic"
    model = Model(example / "config.yaml")
    model.config["trainer"]["progress_bar"] = False
    result = model.train(example / "titanic.csv", output_dir=tmp_path)
    assert result.test_metrics["survived"]["accuracy"] >= 0.75
    assert result.test_metrics["survived"]["roc_auc"] >= 0.8
