"""Plots: PNG files that open as images, and figures whose drawn data match a hand count."""
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from framework import visualize
from framework.api import Model
from framework.cli import main
from framework.errors import FrameworkError
from framework.hyperopt import hyperopt
from framework.visualize import Outputs
from synthetic import synthetic_frame, tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One model with a binary, a category and a number output, trained once for every plot test."""
    root = tmp_path_factory.mktemp("visualize")
    config = tiny_config(outputs=(("label", "binary"), ("tier", "category"), ("amount", "number")), epochs=4)
    frame = synthetic_frame(300)
    result = Model(config).train(frame, output_dir=root / "results", experiment_name="plots")
    test = synthetic_frame(120, seed=7)
    test.to_csv(root / "test.csv", index=False)
    return Model.load(result.output_dir / "model"), result, test, root


def assert_png(path):
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100
        image.verify()


def test_learning_curves_draw_the_statistics_of_each_split(trained, tmp_path):
    model, result, _, _ = trained
    figures = model.plot_learning_curves(result.training_statistics)
    assert {"learning_curves_label_loss", "learning_curves_tier_accuracy", "learning_curves_amount_mae",
            "learning_curves_combined_loss"} <= set(figures)
    axes = figures["learning_curves_label_loss"].axes[0]
    lines = {line.get_label(): line for line in axes.lines}
    statistics = result.training_statistics
    for split in ("train", "validation", "test"):
        assert list(lines[split].get_xdata()) == statistics["epochs"]
        np.testing.assert_allclose(lines[split].get_ydata(), statistics[split]["label"]["loss"])
    best = statistics["best"]  # the kept epoch is marked on the watched metric's plot
    watched = figures[f"learning_curves_{best['field']}_{best['metric']}"].axes[0]
    assert [line.get_xdata()[0] for line in watched.lines if line.get_label().startswith("best")] == [best["epoch"]]
    model.plot_learning_curves(result.training_statistics, output_feature="label", output_directory=tmp_path)
    assert {path.stem for path in tmp_path.glob("*.png")} == {name for name in figures if "_label_" in name}
    assert_png(tmp_path / "learning_curves_label_loss.png")
    # from the run directory, as the CLI reads it
    tier = {f"learning_curves_tier_{metric}" for metric in ("loss", "accuracy", "top_k_accuracy", "macro_f1")}
    assert set(visualize.learning_curves(result.output_dir, "tier")) == tier


def test_the_confusion_matrix_counts_match_a_hand_count(trained, tmp_path):
    model, _, test, _ = trained
    figures = model.plot_confusion_matrix(test, output_feature="tier", output_directory=tmp_path)
    predicted = model.predict(test)["tier_predictions"]
    axes = figures["confusion_matrix_tier"].axes[0]
    labels = [tick.get_text() for tick in axes.get_yticklabels()]
    counts = np.asarray(axes.images[0].get_array())
    for i, truth in enumerate(labels):
        for j, guess in enumerate(labels):
            assert counts[i, j] == ((test["tier"] == truth) & (predicted == guess)).sum()
    assert counts.sum() == len(test)

    bars = figures["class_metrics_tier"].axes[0]
    heights = {container.get_label(): [bar.get_height() for bar in container] for container in bars.containers}
    for i, truth in enumerate(labels):
        hits = ((test["tier"] == truth) & (predicted == truth)).sum()
        assert heights["precision"][i] == pytest.approx(hits / max((predicted == truth).sum(), 1))
        assert heights["recall"][i] == pytest.approx(hits / (test["tier"] == truth).sum())
    assert_png(tmp_path / "confusion_matrix_tier.png")
    assert_png(tmp_path / "class_metrics_tier.png")


def test_roc_and_precision_recall_points_of_a_hand_worked_example():
    outputs = Outputs("y", "binary", np.array([0, 0, 1, 1.0]), np.array([0, 1, 0, 1]),
                      np.array([0.1, 0.4, 0.35, 0.8]), [False, True])
    roc = visualize.roc_curve(outputs).axes[0].lines[0]
    np.testing.assert_allclose(roc.get_xdata(), [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(roc.get_ydata(), [0, 0.5, 0.5, 1, 1])
    assert roc.get_label() == "ROC (AUC = 0.750)"
    pr = visualize.precision_recall_curve(outputs).axes[0].lines[0]
    np.testing.assert_allclose(pr.get_xdata(), [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(pr.get_ydata(), [1, 1, 0.5, 2 / 3, 0.5])
    assert pr.get_label() == "average precision = 0.833"  # sklearn's average_precision_score gives 0.8333


def test_calibration_bins_of_a_hand_worked_example():
    outputs = Outputs("y", "binary", np.array([0, 1, 0, 1.0]), np.array([0, 0, 0, 1]),
                      np.array([0.05, 0.15, 0.12, 0.95]), [False, True])
    line = visualize.calibration(outputs).axes[0].lines[1]
    np.testing.assert_allclose(line.get_xdata(), [0.05, 0.135, 0.95])
    np.testing.assert_allclose(line.get_ydata(), [0.0, 0.5, 1.0])


def test_binary_and_number_plots_of_a_model(trained, tmp_path):
    model, _, test, _ = trained
    roc = model.plot_roc(test, output_directory=tmp_path).axes[0].lines[0]
    assert (roc.get_xdata()[-1], roc.get_ydata()[-1]) == (1, 1)
    area = np.trapezoid(roc.get_ydata(), roc.get_xdata())  # the curve's area is the metric's roc_auc
    assert model.evaluate(test)["label"]["roc_auc"] == pytest.approx(area, abs=1e-6)
    assert roc.get_label() == f"ROC (AUC = {area:.3f})"
    model.plot_precision_recall(test, output_directory=tmp_path)
    model.plot_calibration(test, output_directory=tmp_path)
    scatter = model.plot_pred_vs_true(test, output_directory=tmp_path).axes[0].collections[0]
    truth, predicted = scatter.get_offsets().T
    np.testing.assert_allclose(truth, test["amount"], rtol=1e-5)
    np.testing.assert_allclose(predicted, model.predict(test)["amount_predictions"], rtol=1e-5)
    for name in ("roc_label", "precision_recall_label", "calibration_label", "pred_vs_true_amount"):
        assert_png(tmp_path / f"{name}.png")


def test_plots_refuse_outputs_of_the_wrong_type(trained):
    model, _, test, _ = trained
    with pytest.raises(FrameworkError, match="roc plots binary outputs; 'tier' is a category output"):
        model.plot_roc(test, output_feature="tier")
    with pytest.raises(FrameworkError, match="unknown output feature 'lable'; did you mean 'label'"):
        model.plot_confusion_matrix(test, output_feature="lable")
    with pytest.raises(FrameworkError, match="applies to several outputs here"):  # label and tier both qualify
        visualize.only(visualize.plot_model(model, "confusion_matrix", test), "plot_confusion_matrix")
    with pytest.raises(FrameworkError, match="all one class"):
        model.plot_roc(test[test["label"]])


@pytest.mark.parametrize("kind, files", [
    ("learning_curves", {"learning_curves_label_loss", "learning_curves_label_roc_auc"}),
    ("confusion_matrix", {"confusion_matrix_label", "confusion_matrix_tier", "class_metrics_tier"}),
    ("roc", {"roc_label"}), ("pr", {"precision_recall_label"}), ("calibration", {"calibration_label"}),
    ("pred_vs_true", {"pred_vs_true_amount"}),
])
def test_the_command_line_writes_pngs(trained, tmp_path, kind, files, capsys):
    model, result, _, root = trained
    source = ["--run", str(result.output_dir), "--output-feature", "label"] if kind == "learning_curves" else \
        ["--model", str(result.output_dir / "model"), "--dataset", str(root / "test.csv")]
    assert main(["visualize", "--kind", kind, *source, "--output-directory", str(tmp_path)]) == 0
    written = {path.stem for path in tmp_path.glob("*.png")}
    assert files <= written
    for name in files:
        assert_png(tmp_path / f"{name}.png")
    assert str(tmp_path) in capsys.readouterr().out


def test_the_command_line_explains_missing_arguments(trained, capsys):
    _, result, _, _ = trained
    assert main(["visualize", "--kind", "roc", "--model", str(result.output_dir / "model")]) == 2
    assert "needs --model and --dataset" in capsys.readouterr().err
    assert main(["visualize", "--kind", "hyperopt", "--run", str(result.output_dir)]) == 2
    assert "is not a search's output directory" in capsys.readouterr().err


def test_search_plots(tmp_path):
    config = tiny_config(epochs=1)
    config["hyperopt"] = {"parameters": {"trainer.learning_rate": {"space": "loguniform", "lower": 1e-3, "upper": 0.1},
                                         "combiner.num_fc_layers": {"space": "choice", "categories": [0, 1]}},
                          "num_samples": 3, "sampler": {"type": "random", "seed": 3}}
    search = hyperopt(config, synthetic_frame(200), output_directory=tmp_path / "search")
    trials = pd.read_csv(tmp_path / "search" / "trials.csv")

    figures = visualize.hyperopt_plots(tmp_path / "search")
    assert set(figures) == {"hyperopt_metric_by_trial", "hyperopt_trainer.learning_rate",
                            "hyperopt_combiner.num_fc_layers"}
    by_trial = figures["hyperopt_metric_by_trial"].axes[0]
    np.testing.assert_allclose(by_trial.collections[0].get_offsets(), trials[["trial", "value"]].to_numpy())
    np.testing.assert_allclose(by_trial.lines[0].get_ydata(), trials["value"].cummin())  # best so far
    rate = figures["hyperopt_trainer.learning_rate"].axes[0]
    assert rate.get_xscale() == "log"
    np.testing.assert_allclose(rate.collections[0].get_offsets(),
                               trials[["params.trainer.learning_rate", "value"]].to_numpy())
    assert search.best_value == trials["value"].min()

    assert main(["visualize", "--kind", "hyperopt", "--run", str(tmp_path / "search"),
                 "--output-directory", str(tmp_path / "plots")]) == 0
    for name in figures:
        assert_png(tmp_path / "plots" / f"{name}.png")
    summary = json.loads((tmp_path / "search" / "hyperopt_summary.json").read_text())
    assert summary["spaces"]["trainer.learning_rate"]["space"] == "loguniform"
