"""project_aggregate: the aggregation of the projections by hand, and XOR learned."""
import pytest
import torch

from combiners.project_aggregate import ProjectAggregateCombiner
from framework.models.encoded import Encoded


@pytest.mark.parametrize("aggregation, reference", [
    ("mean", lambda p, q: (p + q) / 2), ("sum", lambda p, q: p + q), ("max", torch.maximum)])
def test_projections_are_aggregated_elementwise(aggregation, reference):
    torch.manual_seed(0)
    combiner = ProjectAggregateCombiner({"a": 3, "b": 5}, num_fc_layers=0, projection_size=4, aggregation=aggregation)
    a, b = torch.randn(2, 3), torch.randn(2, 5)
    expected = reference(combiner.projections["a"](a), combiner.projections["b"](b))
    torch.testing.assert_close(combiner({"a": Encoded(a), "b": Encoded(b)}), expected)


def test_project_aggregate_learns_xor(learn, xor):
    sizes, batch = xor
    combiner = ProjectAggregateCombiner(sizes, output_size=16, projection_size=16)
    assert learn(combiner, batch, 100) >= 0.97
