"""The model learns simple rules on synthetic data, with pinned floors on held-out test metrics."""
import pytest

from framework import Model


def train(make_frame, make_config, inputs, outputs, **trainer):
    config = make_config(inputs=inputs, outputs=outputs, epochs=25, early_stop=0, **trainer)
    result = Model(config).train(make_frame(600, seed=0), validation=make_frame(100, seed=2),
                                 test=make_frame(300, seed=1), output_dir=None)
    return result.test_metrics


def test_binary_output_from_a_threshold_rule(make_frame, make_config):
    metrics = train(make_frame, make_config, ("x", "z", "color"), (("label", "binary"),))
    assert metrics["label"]["accuracy"] >= 0.9
    assert metrics["label"]["roc_auc"] >= 0.95


def test_number_output_regression(make_frame, make_config):
    metrics = train(make_frame, make_config, ("x", "z", "color"), (("amount", "number"),))
    assert metrics["amount"]["r2"] >= 0.9


def test_category_output(make_frame, make_config):
    metrics = train(make_frame, make_config, ("x", "z"), (("tier", "category"),))
    assert metrics["tier"]["accuracy"] >= 0.9


def test_two_outputs_learned_jointly(make_frame, make_config):
    metrics = train(make_frame, make_config, ("x", "z", "color"), (("label", "binary"), ("amount", "number")))
    assert metrics["label"]["accuracy"] >= 0.9
    assert metrics["amount"]["r2"] >= 0.9
    assert metrics["combined"]["loss"] == pytest.approx(metrics["label"]["loss"] + metrics["amount"]["loss"], rel=1e-6)


def test_a_category_input_carries_the_signal(make_frame, make_config):
    """label = color is red: only the category encoder can learn it."""
    frame = make_frame(600, seed=0)
    frame["label"] = frame["color"] == "red"
    validation, test = make_frame(100, seed=2), make_frame(200, seed=1)
    validation["label"], test["label"] = validation["color"] == "red", test["color"] == "red"
    config = make_config(inputs=("color", "z"), epochs=15, early_stop=0)
    metrics = Model(config).train(frame, validation=validation, test=test, output_dir=None).test_metrics
    assert metrics["label"]["accuracy"] >= 0.99
