"""Losses against torch's functional references, and class weights computed by hand."""
import pytest
import torch
from torch.nn import functional

from framework.errors import DataError
from framework.losses.tabular import (BinaryCrossEntropy, HuberLoss, MAELoss, MSELoss, SoftmaxCrossEntropy,
                              class_weight_vector)

VOCAB = ["<UNK>", "a", "b", "c"]
FREQUENCIES = [0, 6, 3, 1]


def test_regression_losses():
    torch.manual_seed(0)
    logits, target = torch.randn(10, 1), torch.randn(10)
    torch.testing.assert_close(MSELoss()(logits, target), functional.mse_loss(logits.squeeze(-1), target))
    torch.testing.assert_close(MAELoss()(logits, target), (logits.squeeze(-1) - target).abs().mean())
    torch.testing.assert_close(HuberLoss(delta=0.3)(logits, target),
                               functional.huber_loss(logits.squeeze(-1), target, delta=0.3))


def test_binary_cross_entropy_with_a_positive_class_weight():
    logits, target = torch.tensor([[2.0], [-1.0], [0.5]]), torch.tensor([1.0, 0.0, 0.0])
    p = torch.sigmoid(logits.squeeze(-1))
    by_hand = -(3.0 * target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
    torch.testing.assert_close(BinaryCrossEntropy(positive_class_weight=3.0)(logits, target), by_hand)


def test_balanced_class_weights():
    weights = class_weight_vector(VOCAB, FREQUENCIES, "balanced")
    # total / (present labels * count); a label never seen in training keeps weight 1
    torch.testing.assert_close(weights, torch.tensor([1.0, 10 / 18, 10 / 9, 10 / 3]))


def test_class_weights_by_label():
    weights = class_weight_vector(VOCAB, FREQUENCIES, {"b": 2.0, "c": 5})
    torch.testing.assert_close(weights, torch.tensor([1.0, 1.0, 2.0, 5.0]))


def test_class_weights_naming_an_unknown_label():
    with pytest.raises(DataError, match=r"labels not in the training data: \['zz'\]; labels are \['a', 'b', 'c'\]"):
        class_weight_vector(VOCAB, FREQUENCIES, {"zz": 2.0})
    with pytest.raises(DataError, match="must be 'balanced' or a mapping"):
        class_weight_vector(VOCAB, FREQUENCIES, "equal")


def test_softmax_cross_entropy_with_weights_and_smoothing():
    torch.manual_seed(0)
    logits, target = torch.randn(8, 4), torch.tensor([1, 2, 3, 1, 1, 2, 0, 3])
    loss = SoftmaxCrossEntropy(VOCAB, FREQUENCIES, class_weights="balanced", label_smoothing=0.1)
    expected = functional.cross_entropy(logits, target, weight=class_weight_vector(VOCAB, FREQUENCIES, "balanced"),
                                        label_smoothing=0.1)
    torch.testing.assert_close(loss(logits, target), expected)
