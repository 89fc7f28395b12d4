"""sequence_concat and sequence: per-token layout against a hand computation, padding that changes
nothing, the error without a sequence input, and a per-token task learned."""
import pytest
import torch

from combiners.sequence import SequenceCombiner
from combiners.sequence_concat import SequenceConcatCombiner
from framework.errors import FrameworkError
from framework.models.encoded import Encoded


def lengths_mask(lengths: list[int], tokens: int) -> torch.Tensor:
    return torch.arange(tokens).expand(len(lengths), tokens) < torch.tensor(lengths).unsqueeze(1)


def two_sequences_and_a_vector() -> dict[str, Encoded]:
    """s: 3 tokens of width 2, t: 2 tokens of width 1, v: a vector of width 1; two rows."""
    s = torch.tensor([[[1., 2.], [3., 4.], [5., 6.]], [[7., 8.], [9., 9.], [9., 9.]]])
    t = torch.tensor([[[10.], [20.]], [[30.], [40.]]])
    return {"s": Encoded(s[:, 0], s, lengths_mask([3, 1], 3)),
            "v": Encoded(torch.tensor([[-1.], [-2.]])),
            "t": Encoded(t[:, 0], t, lengths_mask([1, 2], 2))}


def test_sequence_concat_lays_out_tokens_as_computed_by_hand():
    out = SequenceConcatCombiner({"s": 2, "v": 1, "t": 1})(two_sequences_and_a_vector())
    # inputs side by side in input order; t padded to 3 tokens with zeros; a token is real where s or t
    # has one; every padding token is all zeros
    expected = torch.tensor([[[1., 2., -1., 10.], [3., 4., -1., 0.], [5., 6., -1., 0.]],
                             [[7., 8., -2., 30.], [0., 0., -2., 40.], [0., 0., 0., 0.]]])
    assert torch.equal(out.mask, torch.tensor([[True, True, True], [True, True, False]]))
    assert torch.equal(out.states, expected)
    torch.testing.assert_close(out.pooled, torch.tensor([[3., 4., -1., 10 / 3], [3.5, 4., -2., 35.]]))


@pytest.mark.parametrize("how, expected", [
    ("sum", [[9., 12., -3., 10.], [7., 8., -4., 70.]]),
    ("max", [[5., 6., -1., 10.], [7., 8., -2., 40.]]),
    ("last", [[5., 6., -1., 0.], [0., 0., -2., 40.]]),
])
def test_sequence_concat_reductions_read_real_tokens_only(how, expected):
    out = SequenceConcatCombiner({"s": 2, "v": 1, "t": 1}, reduce_output=how)(two_sequences_and_a_vector())
    torch.testing.assert_close(out.pooled, torch.tensor(expected))


@pytest.mark.parametrize("how", ["mean", "sum", "max", "last"])
def test_a_row_of_padding_only_reduces_to_zeros(how):
    states = torch.randn(2, 3, 2)
    encoded = {"s": Encoded(states[:, 0], states, lengths_mask([2, 0], 3))}
    out = SequenceConcatCombiner({"s": 2}, reduce_output=how)(encoded)
    assert torch.equal(out.pooled[1], torch.zeros(2)) and torch.isfinite(out.pooled).all()


@pytest.mark.parametrize("cls", [SequenceConcatCombiner, SequenceCombiner])
def test_without_a_sequence_input_the_error_says_what_is_needed(cls):
    combiner = cls({"a": 3, "b": 2})
    with pytest.raises(FrameworkError, match="needs at least one text/sequence/timeseries input"):
        combiner({"a": Encoded(torch.randn(2, 3)), "b": Encoded(torch.randn(2, 2))})


COMBINERS = [
    pytest.param(lambda sizes: SequenceConcatCombiner(sizes, reduce_output="max"), id="sequence_concat"),
    pytest.param(lambda sizes: SequenceCombiner(sizes, encoder="lstm", state_size=4, num_layers=2), id="lstm"),
    pytest.param(lambda sizes: SequenceCombiner(sizes, encoder="gru", state_size=4, bidirectional=True,
                                                reduce_output="last"), id="bidirectional-gru"),
    pytest.param(lambda sizes: SequenceCombiner(sizes, encoder="cnn", state_size=4, num_layers=2, filter_size=3,
                                                dropout=0.5), id="cnn"),
]


@pytest.mark.parametrize("make", COMBINERS)
def test_padding_tokens_change_nothing_in_eval_mode(make):
    torch.manual_seed(0)
    combiner = make({"s": 3, "v": 2}).eval()
    mask = lengths_mask([4, 2, 1], 4)
    states = torch.randn(3, 4, 3)
    vector = Encoded(torch.randn(3, 2))
    short = combiner({"s": Encoded(states[:, 0], states, mask), "v": vector})
    # three more tokens of padding with large values, and different values at the existing padding
    longer = torch.cat([states, 100 * torch.randn(3, 3, 3)], dim=1).masked_fill(
        ~lengths_mask([4, 2, 1], 7).unsqueeze(-1), 55.0)
    long = combiner({"s": Encoded(states[:, 0], longer, lengths_mask([4, 2, 1], 7)), "v": vector})
    torch.testing.assert_close(long.pooled, short.pooled)
    torch.testing.assert_close(long.states[:, :4], short.states)
    assert torch.equal(long.states[:, 4:], torch.zeros(3, 3, combiner.output_size))


def majority_batch(n: int, generator: torch.Generator) -> tuple[dict[str, Encoded], torch.Tensor]:
    """Label: whether the majority sign of a sequence's real tokens agrees with the sign of the vector
    input b. Odd lengths 1-7 (no ties); padding tokens hold large random values that must be ignored."""
    lengths = torch.randint(0, 4, (n,), generator=generator) * 2 + 1
    mask = lengths_mask(lengths.tolist(), 7)
    token_signs = torch.randint(0, 2, (n, 7), generator=generator).float() * 2 - 1
    states = torch.stack([token_signs, 0.1 * torch.randn(n, 7, generator=generator)], dim=-1)
    states = torch.where(mask.unsqueeze(-1), states, 3 * torch.randn(n, 7, 2, generator=generator))
    b = torch.randint(0, 2, (n, 1), generator=generator).float() * 2 - 1
    labels = ((token_signs * mask).sum(dim=1) * b.squeeze(1) > 0).float()
    return {"s": Encoded(states[:, 0], states, mask), "b": Encoded(b)}, labels


@pytest.mark.parametrize("settings, steps, floor", [
    ({"encoder": "lstm", "state_size": 8}, 100, 0.93),
    ({"encoder": "gru", "state_size": 8, "bidirectional": True}, 100, 0.95),
    ({"encoder": "cnn", "state_size": 16}, 150, 0.95),
])
def test_sequence_learns_a_per_token_task(learn, settings, steps, floor):
    assert learn(SequenceCombiner({"s": 2, "b": 1}, **settings), majority_batch, steps) >= floor


def test_bidirectional_cnn_is_rejected_with_the_config(config_error):
    message = config_error({"type": "sequence", "encoder": "cnn", "bidirectional": True})
    assert "combiner.bidirectional: applies to the lstm and gru encoders only, not cnn" in message
