"""Plots of a run, a model's predictions and a search, as matplotlib Figures and PNG files.

Figures are built with `matplotlib.figure.Figure` and drawn by its Agg canvas, never through pyplot:
nothing global (the pyplot backend, its figure registry) changes, and a figure is freed like any
object. Every plot function returns its Figures, so a caller (or a test) can read back the data
drawn; `save` writes them. The curves' numbers are computed here with numpy, from the same targets
and probabilities the metrics use (the model's own preprocessing of the targets); a number printed on
a plot (ROC AUC, R²) is the registered metric's own.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from framework.errors import FrameworkError

SPLIT_STYLES = {"train": "-", "validation": "--", "test": ":"}


def _figure(width: float = 6.4, height: float = 4.8) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(figures: dict[str, Any], output_directory: str | os.PathLike) -> list[Path]:
    """Writes each figure as <name>.png; names are made safe for file names."""
    from framework import atomic

    written = []
    for name, figure in figures.items():
        path = Path(output_directory) / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".png")
        with atomic.atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=100)
        written.append(path)
    return written


# -- learning curves ----------------------------------------------------------------------------------
def read_statistics(source: dict | str | os.PathLike) -> dict:
    """Training statistics from a dict, a training_statistics.json, a run directory, or its model/."""
    if isinstance(source, dict):
        return source
    path = Path(source)
    for candidate in (path, path / "training_statistics.json", path.parent / "training_statistics.json"):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except ValueError as error:
                raise FrameworkError(f"'{candidate}' is not valid JSON: {error}") from None
    raise FrameworkError(f"no training_statistics.json at '{path}': give a run directory (results/<run>), its "
                         "model/ folder, or the file itself")


def learning_curves(statistics: dict | str | os.PathLike, output_feature: str | None = None,
                    metrics: list[str] | None = None) -> dict[str, Any]:
    """One figure per output and metric, a line per split, over epochs:
    {"learning_curves_<output>_<metric>": Figure}."""
    from matplotlib.ticker import MaxNLocator

    statistics = read_statistics(statistics)
    epochs = statistics.get("epochs") or []
    splits = [split for split in SPLIT_STYLES if split in statistics]
    outputs = list(dict.fromkeys(output for split in splits for output in statistics[split]))
    if output_feature is not None:
        _check_name(output_feature, outputs, "output feature")
        outputs = [output_feature]
    figures = {}
    for output in outputs:
        names = list(dict.fromkeys(m for split in splits for m in statistics[split].get(output, {})))
        for metric in names if metrics is None else [m for m in names if m in metrics]:
            figure = _figure()
            axes = figure.subplots()
            for split in splits:
                values = statistics[split].get(output, {}).get(metric)
                if values:
                    axes.plot(epochs[:len(values)] or range(1, len(values) + 1), values, SPLIT_STYLES[split],
                              marker="o", markersize=3, label=split)
            best = statistics.get("best") or {}
            if best.get("epoch") and best.get("field") == output and best.get("metric") == metric:
                axes.axvline(best["epoch"], color="grey", linewidth=0.8, label=f"best (epoch {best['epoch']})")
            axes.set(title=f"{output}: {metric}", xlabel="epoch", ylabel=metric)
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.legend()
            figures[f"learning_curves_{output}_{metric}"] = figure
    if not figures:
        raise FrameworkError("the training statistics hold no per-epoch metrics to plot")
    return figures


# -- a model's predictions ------------------------------------------------------------------------------
@dataclass
class Outputs:
    """One output's targets and predictions over a labelled dataset, as the metrics see them."""

    name: str
    type: str
    targets: np.ndarray  # class ids (category), 0/1 (binary), values in the data's units (number)
    predictions: np.ndarray
    probabilities: np.ndarray | None  # of the true class (binary) or of every class (category)
    labels: list | None


def model_outputs(model: Any, dataset: Any, output_feature: str) -> Outputs:
    return outputs_of(model, dataset, [output_feature])[output_feature]


def outputs_of(model: Any, dataset: Any, output_features: list[str]) -> dict[str, Outputs]:
    """{output: its Outputs}, from one pass of the dataset through preprocessing and the model."""
    from framework.data.pipeline import prepare_inference
    from framework.training.device import resolve_device
    from framework.training.evaluation import run_split

    trainer = model.config["trainer"]
    device = resolve_device(trainer["device"])
    model.module.to(device)
    arrays, _ = prepare_inference(model.config, model.metadata, dataset, with_targets=True)
    split = run_split(model.module, arrays, trainer["eval_batch_size"], device, trainer["precision"])
    return {name: _split_outputs(model, split, name) for name in output_features}


def _split_outputs(model: Any, split: Any, output_feature: str) -> Outputs:
    feature = model.module.output_features[output_feature]
    kind, metadata = feature.kind, feature.metadata
    predicted = {key: value.float().cpu().numpy() for key, value in split.predictions[output_feature].items()}
    targets = kind.metric_target(split.targets[output_feature], metadata).float().cpu().numpy()
    labels = kind.labels(metadata) if hasattr(kind, "labels") else metadata.get("vocab")
    return Outputs(output_feature, feature.config["type"], targets, predicted["predictions"],
                   predicted.get("probabilities"), labels)


def confusion_matrix(outputs: Outputs, normalize: bool = False) -> Any:
    """Rows are true classes, columns predicted ones; classes that never occur are left out."""
    matrix, labels = _counts(outputs)
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    figure = _figure(max(4.8, 0.6 * len(labels) + 2.5), max(4.0, 0.6 * len(labels) + 2))
    axes = figure.subplots()
    image = axes.imshow(shown, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(labels))
    axes.set_xticks(ticks, [str(label) for label in labels], rotation=45, ha="right")
    axes.set_yticks(ticks, [str(label) for label in labels])
    limit = shown.max() / 2 if shown.size else 0
    for (row, column), value in np.ndenumerate(shown):
        axes.text(column, row, f"{value:.2f}" if normalize else str(int(value)), ha="center", va="center",
                  color="white" if value > limit else "black")
    axes.set(title=f"{outputs.name}: confusion matrix", xlabel="predicted", ylabel="true")
    return figure


def class_metrics(outputs: Outputs) -> Any:
    """Precision, recall and F1 of each class, from the confusion matrix."""
    matrix, labels = _counts(outputs)
    hits = np.diag(matrix).astype(float)
    precision = hits / np.maximum(matrix.sum(axis=0), 1)
    recall = hits / np.maximum(matrix.sum(axis=1), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    figure = _figure(max(6.4, 0.9 * len(labels) + 2))
    axes = figure.subplots()
    positions = np.arange(len(labels))
    for offset, (name, values) in zip((-0.27, 0.0, 0.27), (("precision", precision), ("recall", recall), ("f1", f1))):
        axes.bar(positions + offset, values, width=0.27, label=name)
    axes.set_xticks(positions, [str(label) for label in labels], rotation=45, ha="right")
    axes.set(title=f"{outputs.name}: per-class metrics", ylim=(0, 1.05), ylabel="score")
    axes.legend()
    return figure


def _counts(outputs: Outputs) -> tuple[np.ndarray, list]:
    labels = list(outputs.labels)
    targets, predictions = outputs.targets.astype(np.int64), outputs.predictions.astype(np.int64)
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, (targets, predictions), 1)
    used = np.flatnonzero(matrix.sum(axis=0) + matrix.sum(axis=1))
    return matrix[np.ix_(used, used)], [labels[i] for i in used]


def _ranked(outputs: Outputs) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Cumulative true and false positives at each distinct threshold, highest probability first."""
    targets, scores = outputs.targets.astype(np.int64), outputs.probabilities.astype(np.float64)
    positives = int(targets.sum())
    if positives in (0, len(targets)):
        raise FrameworkError(f"output '{outputs.name}': the dataset's targets are all one class; ROC and "
                             "precision-recall curves need both")
    order = np.argsort(-scores, kind="mergesort")
    scores, targets = scores[order], targets[order]
    cuts = np.r_[np.flatnonzero(np.diff(scores)), len(targets) - 1]
    true_positives = np.cumsum(targets)[cuts]
    return true_positives, cuts + 1 - true_positives, positives, len(targets) - positives


def roc_curve(outputs: Outputs) -> Any:
    from framework.metrics import tabular

    tp, fp, positives, negatives = _ranked(outputs)
    tpr, fpr = np.r_[0.0, tp / positives], np.r_[0.0, fp / negatives]
    auc = _metric(tabular.roc_auc, outputs, "probabilities")
    figure = _figure(5.5, 5)
    axes = figure.subplots()
    axes.plot(fpr, tpr, label=f"ROC (AUC = {auc:.3f})")
    axes.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    axes.set(title=f"{outputs.name}: ROC curve", xlabel="false positive rate", ylabel="true positive rate",
             xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower right")
    return figure


def precision_recall_curve(outputs: Outputs) -> Any:
    tp, fp, positives, _ = _ranked(outputs)
    precision, recall = np.r_[1.0, tp / (tp + fp)], np.r_[0.0, tp / positives]
    average = float(np.sum(np.diff(recall) * precision[1:]))
    figure = _figure(5.5, 5)
    axes = figure.subplots()
    axes.step(recall, precision, where="post", label=f"average precision = {average:.3f}")
    axes.axhline(positives / len(outputs.targets), linestyle=":", color="grey", label="chance")
    axes.set(title=f"{outputs.name}: precision-recall curve", xlabel="recall", ylabel="precision",
             xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower left")
    return figure


def calibration(outputs: Outputs, bins: int = 10) -> Any:
    """Mean predicted probability against the observed fraction of positives, per probability bin."""
    scores, targets = outputs.probabilities.astype(np.float64), outputs.targets.astype(np.float64)
    which = np.digitize(scores, np.linspace(0, 1, bins + 1)[1:-1])
    counts = np.bincount(which, minlength=bins)
    filled = counts > 0
    mean_score = np.bincount(which, scores, minlength=bins)[filled] / counts[filled]
    observed = np.bincount(which, targets, minlength=bins)[filled] / counts[filled]
    figure = _figure(5.5, 6)
    top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    top.plot(mean_score, observed, "o-", label=outputs.name)
    top.set(title=f"{outputs.name}: calibration", ylabel="fraction of positives", ylim=(0, 1.02))
    top.legend(loc="upper left")
    bottom.hist(scores, bins=np.linspace(0, 1, bins + 1))
    bottom.set(xlabel="predicted probability", ylabel="rows", xlim=(0, 1))
    return figure


def pred_vs_true(outputs: Outputs) -> Any:
    from framework.metrics import tabular

    targets, predictions = outputs.targets.astype(np.float64), outputs.predictions.astype(np.float64)
    r2 = _metric(tabular.r2, outputs, "predictions")
    figure = _figure(5.5, 5)
    axes = figure.subplots()
    axes.scatter(targets, predictions, s=8, alpha=0.6, label=f"rows (R² = {r2:.3f})")
    low, high = float(min(targets.min(), predictions.min())), float(max(targets.max(), predictions.max()))
    axes.plot([low, high], [low, high], ":", color="grey", label="predicted = true")
    axes.set(title=f"{outputs.name}: predicted vs true", xlabel="true", ylabel="predicted")
    axes.legend(loc="upper left")
    return figure


def _metric(metric: Callable, outputs: Outputs, field: str) -> float:
    """A registered metric (framework/metrics/tabular.py) of `outputs`, which it reads from `field`
    (probabilities or predictions): the number a plot shows is the one evaluate reports."""
    import torch

    values = torch.from_numpy(np.asarray(getattr(outputs, field)))
    return float(metric({field: values}, torch.from_numpy(np.asarray(outputs.targets)), {}))


# kind -> (output types it plots, {file name prefix: plot of one output's Outputs})
MODEL_PLOTS: dict[str, tuple[tuple[str, ...], dict[str, Callable[[Outputs], Any]]]] = {
    "confusion_matrix": (("category", "binary"),
                         {"confusion_matrix": confusion_matrix, "class_metrics": class_metrics}),
    "roc": (("binary",), {"roc": roc_curve}),
    "pr": (("binary",), {"precision_recall": precision_recall_curve}),
    "calibration": (("binary",), {"calibration": calibration}),
    "pred_vs_true": (("number",), {"pred_vs_true": pred_vs_true}),
}


def plot_model(model: Any, kind: str, dataset: Any, output_feature: str | None = None) -> dict[str, Any]:
    """{"<plot>_<output>": Figure} of one kind, for the named output or every output it applies to."""
    _check_name(kind, list(MODEL_PLOTS), "plot kind")
    if model.module is None:
        raise FrameworkError("the model is not trained: call train() or Model.load() first")
    if model.is_llm:
        raise FrameworkError(f"{kind} plots apply to ecd models")
    types, plots = MODEL_PLOTS[kind]
    figures = {}
    for name, outputs in outputs_of(model, dataset, _outputs_for(model.config, kind, types, output_feature)).items():
        figures.update({f"{prefix}_{name}": plot(outputs) for prefix, plot in plots.items()})
    return figures


def _outputs_for(config: dict, kind: str, types: tuple[str, ...], output_feature: str | None) -> list[str]:
    outputs = {feature["name"]: feature["type"] for feature in config["output_features"]}
    if output_feature is not None:
        _check_name(output_feature, list(outputs), "output feature")
        if outputs[output_feature] not in types:
            raise FrameworkError(f"{kind} plots {' or '.join(types)} outputs; '{output_feature}' is a "
                                 f"{outputs[output_feature]} output")
        return [output_feature]
    found = [name for name, kind_of in outputs.items() if kind_of in types]
    if not found:
        raise FrameworkError(f"{kind} plots {' or '.join(types)} outputs; this model has none "
                             f"({', '.join(f'{n}: {t}' for n, t in outputs.items())})")
    return found


def only(figures: dict[str, Any], what: str) -> Any:
    """The one figure of a single-figure plot; several mean the output must be named."""
    if len(figures) != 1:
        raise FrameworkError(f"{what} applies to several outputs here ({', '.join(figures)}): name one with "
                             "output_feature=")
    return next(iter(figures.values()))


def _check_name(name: str, valid: list[str], kind: str) -> None:
    if name not in valid:
        from framework.config.problems import did_you_mean

        raise FrameworkError(f"unknown {kind} '{name}'; {did_you_mean(name, valid)}")


# -- a search ---------------------------------------------------------------------------------------------
def hyperopt_plots(directory: str | os.PathLike) -> dict[str, Any]:
    """The metric of each trial (and the best so far), and each parameter against the metric."""
    import pandas as pd

    from framework.hyperopt.results import PARAM_PREFIX, SUMMARY, TRIALS_CSV

    directory = Path(directory)
    if not (directory / TRIALS_CSV).is_file() or not (directory / SUMMARY).is_file():
        raise FrameworkError(f"'{directory}' is not a search's output directory: it lacks {TRIALS_CSV} or {SUMMARY}")
    trials = pd.read_csv(directory / TRIALS_CSV)
    summary = json.loads((directory / SUMMARY).read_text())
    label = f"{summary['split']} {summary['output_feature']} {summary['metric']}"
    done = trials[trials["state"] == "COMPLETE"]
    figures = {"hyperopt_metric_by_trial": _metric_by_trial(trials, done, label, summary["goal"])}
    spaces = summary.get("spaces", {})
    for path in summary["parameters"]:
        figures[f"hyperopt_{path}"] = _parameter_vs_metric(done, PARAM_PREFIX + path, path, label,
                                                           spaces.get(path, {}))
    return figures


def _metric_by_trial(trials: Any, done: Any, label: str, goal: str) -> Any:
    figure = _figure()
    axes = figure.subplots()
    axes.scatter(done["trial"], done["value"], label="completed")
    others = trials[trials["state"] != "COMPLETE"]
    for state, group in others.dropna(subset=["value"]).groupby("state"):  # a pruned trial keeps its last report
        axes.scatter(group["trial"], group["value"], marker="x", label=f"{state.lower()} (last report)")
    for index, number in enumerate(others[others["value"].isna()]["trial"]):  # failed: no value to place
        axes.axvline(number, color="red", alpha=0.3, linewidth=0.8, label="failed" if index == 0 else None)
    if len(done):
        best = done["value"].cummin() if goal == "minimize" else done["value"].cummax()
        axes.step(done["trial"], best, where="post", color="grey", label="best so far")
    axes.set(title="metric per trial", xlabel="trial", ylabel=label)
    axes.legend()
    return figure


def _parameter_vs_metric(done: Any, column: str, path: str, label: str, space: dict) -> Any:
    import pandas as pd

    figure = _figure()
    axes = figure.subplots()
    values = done[column]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric:
        axes.scatter(values, done["value"])
        if space.get("space") == "loguniform" or space.get("log"):
            axes.set_xscale("log")
    else:  # categories: one column of points each, in order of appearance
        names = list(dict.fromkeys(str(v) for v in values))
        axes.scatter([names.index(str(v)) for v in values], done["value"])
        axes.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axes.set(title=f"{path} vs metric", xlabel=path, ylabel=label)
    return figure


def saved(figures: dict[str, Any], output_directory: str | os.PathLike | None) -> dict[str, Any]:
    """The figures, written as PNGs first when a directory is given."""
    if output_directory is not None:
        save(figures, output_directory)
    return figures
