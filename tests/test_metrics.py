"""Every metric against scikit-learn on random data."""
import numpy as np
import pytest
import torch
from sklearn import metrics as sk

from framework.metrics import tabular as metrics
from framework.registry import metrics as metric_registry

SEEDS = [0, 1, 2]


def binary_case(seed: int, ties: bool = False):
    rng = np.random.default_rng(seed)
    target = (rng.random(300) < 0.4).astype(np.float32)
    probabilities = np.clip(0.35 * target + rng.random(300) * 0.65, 0, 1)
    if ties:  # few distinct scores, so many positives and negatives share a score
        probabilities = np.round(probabilities, 1)
    outputs = {"probabilities": torch.tensor(probabilities), "predictions": torch.tensor(probabilities >= 0.5)}
    return outputs, torch.tensor(target), target.astype(int), probabilities, (probabilities >= 0.5).astype(int)


def category_case(seed: int, classes: int = 6):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, classes, size=400)
    logits = rng.normal(size=(400, classes))
    logits[np.arange(400), target] += rng.random(400) * 2  # some skill, not perfect
    probabilities = torch.softmax(torch.tensor(logits), dim=-1)
    outputs = {"probabilities": probabilities, "predictions": probabilities.argmax(-1)}
    return outputs, torch.tensor(target), target, probabilities.numpy(), outputs["predictions"].numpy()


def number_case(seed: int):
    rng = np.random.default_rng(seed)
    target = rng.normal(3.0, 2.0, size=250)
    predictions = target + rng.normal(0, 0.8, size=250)
    return {"predictions": torch.tensor(predictions, dtype=torch.float32)}, torch.tensor(target, dtype=torch.float32), \
        target.astype(np.float32), predictions.astype(np.float32)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_roc_auc(seed, ties):
    outputs, target, y, p, _ = binary_case(seed, ties)
    assert metrics.roc_auc(outputs, target, {}).item() == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)


def test_roc_auc_of_one_class_is_no_skill():
    outputs = {"probabilities": torch.tensor([0.2, 0.9]), "predictions": torch.tensor([False, True])}
    assert metrics.roc_auc(outputs, torch.tensor([1.0, 1.0]), {}).item() == 0.5


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name, reference", [
    ("accuracy", sk.accuracy_score),
    ("precision", sk.precision_score),
    ("recall", sk.recall_score),
    ("f1", sk.f1_score),
])
def test_binary_classification_metrics(seed, name, reference):
    outputs, target, y, _, predicted = binary_case(seed)
    value = metric_registry.get(name, "binary").cls(outputs, target, {}).item()
    assert value == pytest.approx(reference(y, predicted), abs=1e-12)


@pytest.mark.parametrize("name, reference", [
    ("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score)])
def test_binary_metrics_without_positives_are_zero(name, reference):
    outputs = {"probabilities": torch.tensor([0.1, 0.2]), "predictions": torch.tensor([False, False])}
    target = torch.tensor([0.0, 0.0])
    value = metric_registry.get(name, "binary").cls(outputs, target, {}).item()
    assert value == reference([0, 0], [0, 0], zero_division=0) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_category_accuracy_and_macro_f1(seed):
    outputs, target, y, _, predicted = category_case(seed)
    assert metrics.accuracy(outputs, target, {}).item() == pytest.approx(sk.accuracy_score(y, predicted), abs=1e-12)
    assert metrics.macro_f1(outputs, target, {}).item() == pytest.approx(
        sk.f1_score(y, predicted, average="macro"), abs=1e-12)


def test_macro_f1_averages_over_labels_present_in_targets_or_predictions():
    probabilities = torch.eye(5)[[1, 1, 2, 3]]  # label 0 (<UNK>) and 4 never occur
    outputs = {"probabilities": probabilities, "predictions": probabilities.argmax(-1)}
    target = torch.tensor([1, 2, 2, 3])
    expected = sk.f1_score([1, 2, 2, 3], [1, 1, 2, 3], average="macro")
    assert metrics.macro_f1(outputs, target, {}).item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_accuracy(seed, k):
    outputs, target, y, probabilities, _ = category_case(seed)
    expected = sk.top_k_accuracy_score(y, probabilities, k=k, labels=np.arange(probabilities.shape[1]))
    assert metrics.top_k_accuracy(outputs, target, {"top_k": k}).item() == pytest.approx(expected, abs=1e-12)


def test_top_k_larger_than_the_vocabulary_counts_every_row():
    outputs, target, *_ = category_case(0, classes=3)
    assert metrics.top_k_accuracy(outputs, target, {"top_k": 10}).item() == 1.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name, reference", [
    ("mse", sk.mean_squared_error),
    ("mae", sk.mean_absolute_error),
    ("rmse", sk.root_mean_squared_error),
    ("r2", sk.r2_score),
])
def test_regression_metrics(seed, name, reference):
    outputs, target, y, predicted = number_case(seed)
    value = metric_registry.get(name, "number").cls(outputs, target, {}).item()
    assert value == pytest.approx(reference(y, predicted), rel=1e-6)


def test_every_registered_metric_is_compared_here():
    """A new metric needs a reference test (here or in the files named)."""
    tested = {"loss", "mse", "mae", "rmse", "r2", "accuracy", "precision", "recall", "f1", "roc_auc",
              "top_k_accuracy", "macro_f1",
              # tests/test_sequence_metrics.py
              "token_accuracy", "sequence_accuracy", "edit_distance", "bleu", "rouge", "perplexity",
              # tests/components/test_set_components.py and test_vector_components.py
              "jaccard", "cosine_similarity"}
    assert set(metric_registry.names()) == tested


def test_every_metric_declares_its_goal():
    for entry in metric_registry.entries():
        assert entry.extra["goal"] in ("min", "max"), entry.name
