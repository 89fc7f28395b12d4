"""The Python API as a user drives it: train, the files a run writes, predict, evaluate,
collect_activations, save and load."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from synthetic import synthetic_frame, tiny_config

from framework import Model
from framework.api import TrainResult
from framework.errors import ConfigError, FrameworkError

TITANIC = Path(__file__).resolve().parents[1] / "examples" / "titanic" / "titanic.csv"


def assert_metrics_close(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for output, values in expected.items():
        assert actual[output] == pytest.approx(values, rel=1e-6), output


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """The binary target as two custom labels, like the Titanic's survived / died."""
    return frame.assign(label=np.where(frame["label"], "yes_buy", "no_buy"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One model trained for the tests that only read from it: (model, result, train frame, test frame)."""
    config = tiny_config(epochs=15, early_stop=0)
    config["output_features"][0]["preprocessing"] = {"true_label": "yes_buy"}
    train, test = labelled(synthetic_frame(400, seed=0)), labelled(synthetic_frame(120, seed=1))
    model = Model(config)
    result = model.train(train, validation=labelled(synthetic_frame(80, seed=2)), test=test,
                         output_dir=tmp_path_factory.mktemp("results"))
    return model, result, train, test


def test_train_from_a_yaml_path_on_the_titanic_csv(tmp_path):
    config = {
        "input_features": [{"name": "pclass", "type": "category"}, {"name": "sex", "type": "category"},
                           {"name": "age", "type": "number"}, {"name": "sibsp", "type": "number"},
                           {"name": "parch", "type": "number"}],
        "output_features": [{"name": "survived", "type": "binary", "preprocessing": {"true_label": "survived"}}],
        "trainer": {"epochs": 12, "batch_size": 64, "learning_rate": 0.01, "progress_bar": False},
        "preprocessing": {"split": {"type": "stratify", "column": "survived"}},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    model = Model(tmp_path / "config.yaml")
    result = model.train(TITANIC, output_dir=tmp_path / "results")
    assert isinstance(result, TrainResult)
    assert result.output_dir == tmp_path / "results" / "experiment_0"
    assert result.test_metrics["survived"]["accuracy"] >= 0.72  # sex and class alone give ~0.78
    predictions = model.predict(TITANIC)
    assert len(predictions) == 1309
    assert set(predictions["survived_predictions"]) <= {"survived", "died"}


def test_a_run_writes_config_model_statistics_and_checkpoints(trained):
    model, result, _, test = trained
    run = result.output_dir
    for path in ("config.yaml", "model/config.yaml", "model/weights.safetensors", "model/training_set_metadata.json",
                 "training_statistics.json", "test_metrics.json", "checkpoints/latest/model.safetensors",
                 "checkpoints/latest/trainer_state.json", "checkpoints/best/model.safetensors"):
        assert (run / path).is_file(), path
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["epochs"] == 15
    metadata = json.loads((run / "model" / "training_set_metadata.json").read_text())
    assert metadata["framework_version"] == model.config["framework_version"]
    assert metadata["features"]["label"]["true_label"] == "yes_buy"
    assert json.loads((run / "test_metrics.json").read_text()) == result.test_metrics
    assert result.test_metrics["label"]["accuracy"] >= 0.9
    assert result.validation_metrics["label"]["loss"] == pytest.approx(result.training_statistics["best"]["value"])


def test_predict_columns_labels_and_probabilities(trained):
    model, _, _, test = trained
    predictions = model.predict(test)
    assert list(predictions.columns) == ["label_predictions", "label_probability", "label_probabilities_no_buy",
                                         "label_probabilities_yes_buy"]
    assert set(predictions["label_predictions"]) == {"yes_buy", "no_buy"}
    np.testing.assert_allclose(predictions["label_probabilities_no_buy"] + predictions["label_probabilities_yes_buy"],
                               1.0, rtol=1e-6)
    chosen = np.where(predictions["label_predictions"] == "yes_buy", predictions["label_probabilities_yes_buy"],
                      predictions["label_probabilities_no_buy"])
    np.testing.assert_allclose(predictions["label_probability"], chosen)
    assert (predictions["label_probability"] >= 0.5).all()
    assert (predictions["label_predictions"] == test["label"]).mean() >= 0.9


def test_predict_keeps_input_order_and_index(trained):
    model, _, _, test = trained
    frame = test.drop(columns=["label"])  # no target needed to predict
    shuffled = frame.sample(frac=1.0, random_state=4)
    original_labels = shuffled.index
    shuffled.index = pd.Index([f"row{i}" for i in range(len(shuffled))])
    predictions = model.predict(shuffled)
    assert list(predictions.index) == list(shuffled.index)
    reference = model.predict(frame).loc[original_labels]  # the same rows, predicted in the original order
    np.testing.assert_allclose(predictions["label_probability"].to_numpy(), reference["label_probability"].to_numpy(),
                               rtol=1e-6)
    assert list(predictions["label_predictions"]) == list(reference["label_predictions"])
    small_batches = model.predict(shuffled, batch_size=7)
    pd.testing.assert_frame_equal(small_batches, predictions, check_exact=False, rtol=1e-5, atol=1e-6)


def test_save_and_load_give_identical_predictions(trained, tmp_path):
    model, result, _, test = trained
    model.save(tmp_path / "saved")
    expected = model.predict(test)
    pd.testing.assert_frame_equal(Model.load(tmp_path / "saved").predict(test), expected)
    pd.testing.assert_frame_equal(Model.load(result.output_dir / "model").predict(test), expected)
    assert Model.load(tmp_path / "saved").config == model.config


def test_evaluate_returns_metrics_per_output_and_the_combined_loss(trained):
    model, result, _, test = trained
    metrics = model.evaluate(test)
    assert set(metrics) == {"label", "combined"}
    assert list(metrics["label"]) == ["loss", "accuracy", "roc_auc", "precision", "recall", "f1"]
    assert metrics["combined"] == {"loss": pytest.approx(metrics["label"]["loss"])}
    assert_metrics_close(metrics, result.test_metrics)  # the same test set: the same numbers
    assert all(isinstance(value, float) for value in metrics["label"].values())


def test_evaluate_drops_rows_without_a_target(trained):
    model, _, _, test = trained
    with_missing = test.astype({"label": object})
    with_missing.loc[with_missing.index[:20], "label"] = None
    assert_metrics_close(model.evaluate(with_missing), model.evaluate(test.iloc[20:]))


def test_collect_activations_gives_one_row_per_input_row(trained):
    model, _, _, test = trained
    names = model.layer_names()
    assert {"combiner", "input_features.color.encoder", "output_features.label.decoder"} <= set(names)
    assert not any("loss_fn" in name for name in names)  # losses do not run at inference
    activations = model.collect_activations(test, ["combiner", "input_features.color.encoder.embedding"],
                                            batch_size=50)
    assert activations["combiner"].shape == (len(test), 32)
    assert activations["input_features.color.encoder.embedding"].shape == (len(test), 4)  # vocab of 4 caps it


def test_collect_activations_rejects_an_unknown_layer_with_close_names(trained):
    model, _, _, test = trained
    with pytest.raises(FrameworkError, match=r"unknown layer 'combinr'; did you mean 'combiner'"):
        model.collect_activations(test, ["combiner", "combinr"])
    with pytest.raises(FrameworkError, match="no layers given"):
        model.collect_activations(test, [])


def test_an_unseen_category_is_predicted_as_unknown(trained):
    model, _, _, test = trained
    rows = test.iloc[:5]
    purple = model.predict(rows.assign(color="purple"))
    teal = model.predict(rows.assign(color="teal"))
    missing = model.predict(rows.assign(color=None))
    pd.testing.assert_frame_equal(purple, teal)  # both unseen: both <UNK>
    pd.testing.assert_frame_equal(purple, missing)  # missing is filled with <UNK> too


def test_a_missing_input_column_at_predict_time(trained):
    model, _, _, test = trained
    with pytest.raises(FrameworkError, match="column 'x' of feature 'x' is not in the dataset"):
        model.predict(test.drop(columns=["x"]))


def test_category_and_number_outputs(make_frame, make_config):
    config = make_config(inputs=("x", "z"), outputs=(("tier", "category"), ("amount", "number")), epochs=15)
    model = Model(config)
    model.train(make_frame(400), output_dir=None)
    frame = make_frame(60, seed=3)
    predictions = model.predict(frame)
    assert list(predictions.columns[:4]) == ["tier_predictions", "tier_probability", "tier_probabilities_<UNK>",
                                             "tier_probabilities_mid"]  # labels by training frequency
    assert set(predictions.columns[4:]) == {"tier_probabilities_high", "tier_probabilities_low", "amount_predictions"}
    assert (predictions["tier_predictions"] == frame["tier"]).mean() >= 0.85
    residual = predictions["amount_predictions"] - frame["amount"]  # in the user's units, not normalised
    assert 1 - (residual ** 2).sum() / ((frame["amount"] - frame["amount"].mean()) ** 2).sum() >= 0.9


def test_output_weights_weigh_the_combined_loss(make_frame, make_config):
    config = make_config(outputs=(("label", "binary"), ("amount", "number")), epochs=1)
    config["output_features"][0]["weight"] = 2.0
    config["output_features"][1]["weight"] = 0.5
    model = Model(config)
    model.train(make_frame(200), output_dir=None)
    metrics = model.evaluate(make_frame(50, seed=5))
    expected = 2.0 * metrics["label"]["loss"] + 0.5 * metrics["amount"]["loss"]
    assert metrics["combined"]["loss"] == pytest.approx(expected, rel=1e-6)


def test_output_dir_none_writes_nothing(make_frame, make_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = Model(make_config(epochs=1)).train(make_frame(100), output_dir=None)
    assert result.output_dir is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("call", [
    lambda model, frame: model.predict(frame),
    lambda model, frame: model.evaluate(frame),
    lambda model, frame: model.collect_activations(frame, ["combiner"]),
    lambda model, frame: model.save("somewhere"),
])
def test_using_a_model_before_training_is_an_error(make_frame, make_config, call, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Model(make_config())
    with pytest.raises(FrameworkError, match=r"the model is not trained: call train\(\) or Model.load\(\) first"):
        call(model, make_frame(10))
    assert not (tmp_path / "somewhere").exists()


def test_an_invalid_config_fails_at_construction():
    with pytest.raises(ConfigError, match="trainer.epochs"):
        Model({"input_features": [{"name": "x", "type": "number"}],
               "output_features": [{"name": "y", "type": "binary"}], "trainer": {"epochs": 0}})


@pytest.mark.parametrize("name", ["../escape", "a/b", ""])
def test_an_unsafe_experiment_name_is_refused(make_frame, make_config, tmp_path, name):
    with pytest.raises(FrameworkError, match="experiment name"):
        Model(make_config()).train(make_frame(50), output_dir=tmp_path, experiment_name=name)
    assert list(tmp_path.iterdir()) == []
