"""Set and bag encoders, the set classifier, its sigmoid cross-entropy loss and its metrics."""
import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, jaccard_score, precision_score, recall_score

from decoders.multilabel import MultiLabelClassifier
from encoders.set import BagEmbedEncoder, SetEmbedEncoder
from framework.errors import DataError
from framework.losses.set import SigmoidCrossEntropy
from framework.registry import decoders, encoders, losses, metrics

VOCAB = ["<PAD>", "<UNK>", "a", "b", "c"]


def metric(name: str):
    """The set output's metric as evaluation finds it."""
    return metrics.get(name, "set").cls


def test_set_embed_sums_the_embeddings_of_the_row_labels_and_ignores_padding():
    torch.manual_seed(0)
    encoder = SetEmbedEncoder(5, embedding_size=4)
    table = encoder.pool.embedding.weight
    out = encoder(torch.tensor([[2, 3, 0], [4, 0, 0], [0, 0, 0]]))
    assert out.shape == (3, 4) and encoder.output_size == 4
    torch.testing.assert_close(out, torch.stack([table[2] + table[3], table[4], torch.zeros(4)]))


def test_set_embed_mean_and_fc_stack():
    torch.manual_seed(0)
    encoder = SetEmbedEncoder(5, embedding_size=4, reduce_output="mean")
    table = encoder.pool.embedding.weight
    torch.testing.assert_close(encoder(torch.tensor([[2, 3, 0]])), ((table[2] + table[3]) / 2).unsqueeze(0))
    assert SetEmbedEncoder(5, embedding_size=4, num_fc_layers=2, output_size=7)(torch.tensor([[1, 2]])).shape == (1, 7)


@pytest.mark.parametrize("weighting, weights", [("count", [3.0, 1.0]), ("log_count", [1 + np.log(3), 1.0]),
                                                ("presence", [1.0, 1.0])])
def test_bag_embed_weighs_labels_by_their_counts(weighting, weights):
    torch.manual_seed(0)
    encoder = BagEmbedEncoder(5, embedding_size=4, weighting=weighting)
    table = encoder.pool.embedding.weight
    out = encoder(torch.tensor([[[2, 3], [4, 1], [0, 0]]]))
    torch.testing.assert_close(out[0], weights[0] * table[2] + weights[1] * table[4])
    mean = BagEmbedEncoder(5, embedding_size=4, weighting=weighting, reduce_output="mean")
    mean.load_state_dict(encoder.state_dict())
    torch.testing.assert_close(mean(torch.tensor([[[2, 3], [4, 1], [0, 0]]])), out / sum(weights))


def test_registered_names():
    assert encoders.get("embed", "set").cls is SetEmbedEncoder
    assert encoders.get("embed", "bag").cls is BagEmbedEncoder
    assert decoders.get("classifier", "set").cls is MultiLabelClassifier
    assert losses.get("sigmoid_cross_entropy", "set").cls is SigmoidCrossEntropy


def test_classifier_gives_a_logit_per_label():
    assert MultiLabelClassifier(7, 5, num_fc_layers=1)(torch.randn(3, 7)).shape == (3, 5)


def test_loss_is_binary_cross_entropy_over_every_label_but_pad():
    logits = torch.randn(3, 5)
    target = torch.tensor([[2, 3], [1, 0], [0, 0]])
    hot = torch.tensor([[0, 0, 1, 1, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.float32)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 1:], hot[:, 1:])
    torch.testing.assert_close(SigmoidCrossEntropy(VOCAB)(logits, target), expected)


def test_positive_class_weights_by_label_or_for_every_label():
    logits = torch.randn(3, 5)
    target = torch.tensor([[2, 3], [1, 0], [0, 0]])
    hot = torch.nn.functional.one_hot(target, 5).amax(dim=1).float()
    weighted = SigmoidCrossEntropy(VOCAB, positive_class_weights={"b": 4.0})(logits, target)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, 1:], hot[:, 1:], pos_weight=torch.tensor([1.0, 1.0, 4.0, 1.0]))
    torch.testing.assert_close(weighted, expected)
    everywhere = SigmoidCrossEntropy(VOCAB, positive_class_weights=2.0)(logits, target)
    torch.testing.assert_close(everywhere, torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, 1:], hot[:, 1:], pos_weight=torch.full((4,), 2.0)))


@pytest.mark.parametrize("weights, message", [({"zz": 2.0}, "names labels not in the training data: \\['zz'\\]"),
                                              ({"a": -1.0}, "must be positive"), ("balanced", "a positive number")])
def test_bad_positive_class_weights_are_errors(weights, message):
    with pytest.raises(DataError, match=message):
        SigmoidCrossEntropy(VOCAB, positive_class_weights=weights)


def random_sets(seed: int, rows: int = 50, labels: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    predicted = torch.rand(rows, labels, generator=generator) < 0.4
    actual = torch.rand(rows, labels, generator=generator) < 0.4
    predicted[:3] = actual[:3] = False  # rows where both sets are empty
    predicted[:, 0] = actual[:, 0] = False  # the <PAD> column
    return predicted, actual


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn(seed):
    predicted, actual = random_sets(seed)
    outputs = {"predictions": predicted}
    p, a = predicted.numpy(), actual.numpy()
    checks = {
        "jaccard": jaccard_score(a, p, average="samples", zero_division=1.0),
        "precision": precision_score(a, p, average="micro", zero_division=0.0),
        "recall": recall_score(a, p, average="micro", zero_division=0.0),
        "f1": f1_score(a, p, average="micro", zero_division=0.0),
    }
    for name, expected in checks.items():
        assert metric(name)(outputs, actual, {}).item() == pytest.approx(expected, abs=1e-12), name


def test_loss_metric_reports_the_loss():
    assert metric("loss")({"loss": torch.tensor(0.25)}, torch.zeros(1, 2), {}).item() == 0.25
