"""Vector encoders, the projector decoder, vector losses and metrics."""
import pytest
import torch
from sklearn.metrics import r2_score

from decoders.projector import Projector
from encoders.vector import VectorDenseEncoder, VectorPassthroughEncoder
from framework.losses.vector import VectorHuberLoss, VectorMAELoss, VectorMSELoss
from framework.registry import decoders, encoders, losses, metrics


def metric(name: str):
    """The vector output's metric as evaluation finds it."""
    return metrics.get(name, "vector").cls


def test_registered_names():
    assert encoders.get("dense", "vector").cls is VectorDenseEncoder
    assert encoders.get("passthrough", "vector").cls is VectorPassthroughEncoder
    assert encoders.get("dense", "number").cls is not VectorDenseEncoder  # the number encoders stay registered
    assert decoders.get("projector", "vector").cls is Projector
    assert [losses.get(name, "vector").cls for name in ("mse", "mae", "huber")] == [VectorMSELoss, VectorMAELoss,
                                                                                  VectorHuberLoss]


def test_encoders_read_the_whole_vector():
    x = torch.randn(4, 3)
    assert VectorDenseEncoder(3, output_size=8)(x).shape == (4, 8)
    assert torch.equal(VectorPassthroughEncoder(3)(x), x)


@pytest.mark.parametrize("activation, low, high", [("sigmoid", 0, 1), ("tanh", -1, 1)])
def test_projector_width_and_output_activation(activation, low, high):
    out = Projector(7, 3, num_fc_layers=1, output_activation=activation)(10 * torch.randn(5, 7))
    assert out.shape == (5, 3) and out.min() >= low and out.max() <= high
    assert Projector(7, 1)(torch.randn(5, 7)).shape == (5, 1)


def test_losses_average_every_value_even_of_width_one():
    logits, target = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(VectorMSELoss()(logits, target), ((logits - target) ** 2).mean())
    torch.testing.assert_close(VectorMAELoss()(logits, target), (logits - target).abs().mean())
    torch.testing.assert_close(VectorHuberLoss(delta=0.5)(logits, target),
                               torch.nn.functional.huber_loss(logits, target, delta=0.5))
    narrow = torch.randn(4, 1)
    torch.testing.assert_close(VectorMSELoss()(narrow, narrow + 1), torch.tensor(1.0))


def test_metrics_against_hand_computations_and_sklearn():
    torch.manual_seed(0)
    target = torch.randn(20, 3)
    predicted = target + 0.3 * torch.randn(20, 3)
    outputs = {"predictions": predicted}
    assert metric("mse")(outputs, target, {}).item() == pytest.approx(((predicted - target) ** 2).mean().item())
    assert metric("mae")(outputs, target, {}).item() == pytest.approx((predicted - target).abs().mean().item())
    assert metric("rmse")(outputs, target, {}).item() == pytest.approx(
        ((predicted - target) ** 2).mean().sqrt().item(), rel=1e-6)
    assert metric("r2")(outputs, target, {}).item() == pytest.approx(r2_score(target.numpy(), predicted.numpy()),
                                                                         rel=1e-6)
    cosine = (predicted * target).sum(1) / (predicted.norm(dim=1) * target.norm(dim=1))
    assert metric("cosine_similarity")(outputs, target, {}).item() == pytest.approx(cosine.mean().item(), rel=1e-6)


def test_r2_of_a_constant_dimension_follows_sklearn():
    target = torch.tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    for predicted in (target.clone(), target + torch.tensor([0.5, 1.0])):
        expected = r2_score(target.numpy(), predicted.numpy())
        assert metric("r2")({"predictions": predicted}, target, {}).item() == pytest.approx(expected)
