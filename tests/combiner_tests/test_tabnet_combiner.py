"""TabNet: sparsemax against hand computations, masks that are distributions with exact zeros, the
sparsity loss recomputed from the masks, ghost batch norm, and features chosen while learning XOR."""
import pytest
import torch
from torch import nn

from combiners.tabnet import GhostBatchNorm, TabNetCombiner, sparsemax
from framework.models.encoded import Encoded


@pytest.mark.parametrize("logits, expected", [
    ([1.0, 0.5, -1.0], [0.75, 0.25, 0.0]),  # support {1, 0.5}: threshold (1.5 - 1) / 2
    ([0.0, 0.0], [0.5, 0.5]),
    ([3.0, 0.0, 0.0], [1.0, 0.0, 0.0]),
    ([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]),  # on the simplex already: unchanged
])
def test_sparsemax_by_hand(logits, expected):
    torch.testing.assert_close(sparsemax(torch.tensor(logits)), torch.tensor(expected))
    torch.testing.assert_close(sparsemax(torch.tensor(logits).unsqueeze(1), dim=0).squeeze(1), torch.tensor(expected))


def test_sparsemax_gradient_matches_finite_differences():
    logits = torch.randn(5, 6, dtype=torch.double, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(sparsemax, (logits,))


def inputs(rows: int = 16) -> dict[str, Encoded]:
    generator = torch.Generator().manual_seed(0)
    return {name: Encoded(torch.randn(rows, size, generator=generator)) for name, size in {"a": 4, "b": 6, "c": 2}.items()}


def test_masks_are_sparse_distributions_and_aux_loss_is_their_entropy():
    torch.manual_seed(0)
    combiner = TabNetCombiner({"a": 4, "b": 6, "c": 2}, num_steps=3, sparsity=0.01)
    out = combiner(inputs())
    masks = combiner.attention_masks
    assert out.shape == (16, 32) and masks.shape == (16, 3, 12)
    torch.testing.assert_close(masks.sum(dim=-1), torch.ones(16, 3))
    assert (masks >= 0).all() and (masks == 0).any()
    entropy = -(masks * torch.log(masks + 1e-15)).sum(dim=-1).mean(dim=0)  # per step, over rows
    torch.testing.assert_close(combiner.aux_loss, 0.01 * entropy.mean())
    assert combiner.aux_loss.requires_grad and torch.isfinite(combiner.aux_loss)
    torch.testing.assert_close(combiner.aggregated_mask.sum(dim=1), torch.ones(16))
    assert combiner.input_slices == {"a": slice(0, 4), "b": slice(4, 10), "c": slice(10, 12)}


def test_no_sparsity_no_aux_loss():
    combiner = TabNetCombiner({"a": 4, "b": 6, "c": 2}, sparsity=0.0)
    combiner(inputs())
    assert combiner.aux_loss is None


def test_ghost_batch_norm_normalises_each_virtual_batch_in_training():
    torch.manual_seed(0)
    ghost, plain = GhostBatchNorm(3, 0.1, virtual_batch_size=4), nn.BatchNorm1d(3, momentum=0.1)
    x = torch.randn(8, 3) * 5 + 2
    expected = torch.cat([plain(x[:4]), plain(x[4:])])
    torch.testing.assert_close(ghost(x), expected)
    torch.testing.assert_close(ghost.bn.running_mean, plain.running_mean)
    ghost.eval(), plain.eval()
    torch.testing.assert_close(ghost(x), plain(x))  # running statistics in eval, whatever the batch


def test_tabnet_with_ghost_batches_and_no_shared_blocks_runs():
    combiner = TabNetCombiner({"a": 4, "b": 6, "c": 2}, num_shared_blocks=0, num_total_blocks=1, bn_virtual_bs=5)
    assert len(combiner.shared) == 0 and all(len(step) == 1 for step in combiner.steps)
    assert torch.isfinite(combiner(inputs(11))).all()


def test_shared_blocks_cannot_outnumber_the_blocks(config_error):
    message = config_error({"type": "tabnet", "num_total_blocks": 2, "num_shared_blocks": 3})
    assert "combiner.num_shared_blocks: must be at most num_total_blocks (2) (got 3)" in message


def test_tabnet_learns_xor_attending_to_the_informative_columns(learn, xor):
    sizes, batch = xor  # the signal is in column 0 of a and column 0 of b: columns 0 and 3
    combiner = TabNetCombiner(sizes, size=8, output_size=8, num_steps=2)
    assert learn(combiner, batch, 150) >= 0.97
    importance = combiner.aggregated_mask.mean(dim=0)
    assert importance[0] + importance[3] > 0.5, importance
