"""Every combiner of this package on a mix of sequence inputs (states and mask) and one-vector inputs."""
import pytest
import torch

from framework.config.fields import defaults_of
from framework.models.encoded import Encoded, as_encoded
from framework.registry import combiners

ROWS = 4
SIZES = {"words": 6, "ticks": 3, "amount": 2, "color": 5}
SETTINGS = {  # beyond the defaults; entities must name this model's inputs
    "comparator": {"entity_1": ["words", "amount"], "entity_2": ["ticks", "color"]},
}
PER_TOKEN = {"sequence_concat", "sequence"}  # combiners that hand on per-token states


def mixed_inputs() -> dict[str, Encoded]:
    """Two sequence inputs of different lengths (5 and 3 tokens) and two one-vector inputs."""
    words = torch.arange(5).expand(ROWS, 5) < torch.tensor([[5], [2], [1], [4]])
    ticks = torch.arange(3).expand(ROWS, 3) < torch.tensor([[3], [3], [1], [2]])
    return {"words": Encoded(torch.randn(ROWS, 6), torch.randn(ROWS, 5, 6), words),
            "ticks": Encoded(torch.randn(ROWS, 3), torch.randn(ROWS, 3, 3), ticks),
            "amount": Encoded(torch.randn(ROWS, 2)),
            "color": Encoded(torch.randn(ROWS, 5))}


def build(name: str, **settings):
    entry = combiners.get(name)
    return entry.cls(SIZES, **{**defaults_of(entry.schema), **SETTINGS.get(name, {}), **settings})


@pytest.mark.parametrize("name", ["sequence_concat", "sequence", "transformer", "project_aggregate", "comparator",
                                  "tabnet"])
def test_output_shapes_with_sequence_and_vector_inputs(name):
    torch.manual_seed(0)
    combiner = build(name)
    out = as_encoded(combiner(mixed_inputs()))
    assert out.pooled.shape == (ROWS, combiner.output_size) and torch.isfinite(out.pooled).all()
    if name in PER_TOKEN:
        assert out.states.shape == (ROWS, 5, combiner.output_size)
        expected_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]]).bool()
        assert torch.equal(out.mask, expected_mask)  # a token is real where either sequence has one
    else:
        assert out.states is None


@pytest.mark.parametrize("name, settings, width", [
    ("sequence_concat", {}, 16),
    ("sequence", {"encoder": "gru", "state_size": 7, "bidirectional": True}, 14),
    ("sequence", {"encoder": "cnn", "state_size": 7, "num_layers": 2}, 7),
    ("transformer", {"num_fc_layers": 0, "hidden_size": 8, "num_heads": 2, "reduce_output": "concat"}, 32),
    ("transformer", {"num_fc_layers": 0, "hidden_size": 8, "num_heads": 2, "reduce_output": "cls"}, 8),
    ("project_aggregate", {"num_fc_layers": 0, "projection_size": 9}, 9),
    ("comparator", {"num_fc_layers": 0, "entity_size": 3, "include_difference": True}, 15),
    ("tabnet", {"output_size": 11}, 11),
])
def test_output_width_follows_the_settings(name, settings, width):
    combiner = build(name, **settings)
    assert combiner.output_size == width
    assert as_encoded(combiner(mixed_inputs())).pooled.shape == (ROWS, width)
