"""The command line as a user drives it: exit codes, files written, messages without tracebacks."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from framework.cli import main

CONFIG = {
    "input_features": [{"name": "x", "type": "number"}, {"name": "color", "type": "category"}],
    "output_features": [{"name": "label", "type": "binary"}],
    "trainer": {"epochs": 3, "batch_size": 32, "progress_bar": False},
}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    color = rng.choice(["red", "green", "blue"], size=300)
    frame = pd.DataFrame({"x": x, "color": color, "label": (x > 0) | (color == "red")})
    frame.to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_predict_evaluate_activations(workspace, capsys):
    assert main(["train", "--config", "config.yaml", "--dataset", "data.csv", "--experiment-name", "demo"]) == 0
    out = capsys.readouterr().out
    assert "Test metrics:" in out and "accuracy" in out
    model = workspace / "results" / "demo_0" / "model"
    assert (model / "weights.safetensors").is_file()
    assert (workspace / "results" / "demo_0" / "training_statistics.json").is_file()

    assert main(["predict", "--model", str(model), "--dataset", "data.csv", "--output", "out.parquet"]) == 0
    predictions = pd.read_parquet(workspace / "out.parquet")
    assert len(predictions) == 300
    assert {"label_predictions", "label_probability", "label_probabilities_True"} <= set(predictions.columns)

    assert main(["evaluate", "--model", str(model), "--dataset", "data.csv", "--output", "metrics.json"]) == 0
    metrics = json.loads((workspace / "metrics.json").read_text())
    assert 0.0 <= metrics["label"]["accuracy"] <= 1.0 and "loss" in metrics["combined"]

    assert main(["collect_activations", "--model", str(model), "--dataset", "data.csv", "--layers", "combiner",
                 "--output-dir", "acts"]) == 0
    combiner = np.load(workspace / "acts" / "combiner.npy")
    assert combiner.shape[0] == 300
    assert main(["collect_activations", "--model", str(model), "--dataset", "data.csv", "--layers", "combiner",
                 "--output-dir", "acts", "--format", "parquet"]) == 0
    table = pd.read_parquet(workspace / "acts" / "activations.parquet")
    assert list(table.columns) == ["combiner"]
    np.testing.assert_allclose(np.stack(table["combiner"].to_numpy()), combiner)


def test_resume_continues_the_newest_run(workspace):
    args = ["train", "--config", "config.yaml", "--dataset", "data.csv", "--experiment-name", "demo"]
    assert main(args) == 0
    assert main(args + ["--resume"]) == 0
    assert not (workspace / "results" / "demo_1").exists()  # resumed into demo_0, no new run
    assert main(args) == 0
    assert (workspace / "results" / "demo_1").is_dir()


def test_check_prints_the_resolved_config(workspace, capsys):
    assert main(["check", "--config", "config.yaml"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["input_features"][0]["preprocessing"]["normalization"] == "zscore"
    assert resolved["trainer"]["optimizer"]["type"] == "adam"


def test_config_reference_lists_registered_components(workspace, capsys):
    assert main(["config-reference"]) == 0
    text = capsys.readouterr().out
    for name in ("passthrough", "concat", "classifier", "softmax_cross_entropy", "embedding_size", "early_stop"):
        assert name in text


@pytest.mark.parametrize("args, message", [
    (["train", "--config", "missing.yaml", "--dataset", "data.csv"], "config file 'missing.yaml' does not exist"),
    (["train", "--config", "config.yaml", "--dataset", "nope.csv"], "dataset file 'nope.csv' does not exist"),
    (["train", "--config", "config.yaml", "--dataset", "data.txt"], "unsupported format"),
    (["predict", "--model", ".", "--dataset", "data.csv"], "is not a saved model"),
])
def test_user_errors_exit_2_with_a_message(workspace, capsys, args, message):
    (workspace / "data.txt").write_text("x\n1\n")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_config_lists_every_problem(workspace, capsys):
    bad = dict(CONFIG, trainer={"epochs": 0, "optimizer": {"type": "adamm"}})
    bad["input_features"] = [{"name": "x", "type": "numbr"}]
    (workspace / "bad.yaml").write_text(yaml.safe_dump(bad))
    assert main(["check", "--config", "bad.yaml"]) == 2
    err = capsys.readouterr().err
    assert "input_features[0].type: unknown feature type 'numbr'; did you mean 'number'?" in err
    assert "trainer.epochs" in err and "trainer.optimizer.type: unknown optimizer 'adamm'" in err


def test_missing_column_names_columns_present(workspace, capsys):
    config = dict(CONFIG, input_features=[{"name": "colour", "type": "category"}])
    (workspace / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", "--config", "c.yaml", "--dataset", "data.csv"]) == 2
    err = capsys.readouterr().err
    assert "column 'colour'" in err and "did you mean 'color'" in err and "x, color, label" in err


def test_debug_shows_the_traceback(workspace):
    result = subprocess.run([sys.executable, "-m", "framework", "predict", "--debug", "--model", ".",
                             "--dataset", "data.csv"], capture_output=True, text=True, cwd=workspace)
    assert result.returncode != 0 and "Traceback" in result.stderr and "ModelDirError" in result.stderr


def test_help_is_fast_and_imports_nothing_heavy(workspace):
    code = "import sys; from framework.cli import _parser; _parser(); print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_missing_optional_library_names_the_extra_to_install(workspace, monkeypatch, capsys):
    import sys

    assert main(["train", "--config", "config.yaml", "--dataset", "data.csv", "--experiment-name", "demo"]) == 0
    model = workspace / "results" / "demo_0" / "model"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: import raises ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code = main(["visualize", "--kind", "learning_curves", "--run", str(model.parent), "--output-directory", "plots"])
    assert code == 2
    assert "pip install 'framework[viz]'" in capsys.readouterr().err
