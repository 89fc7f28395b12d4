"""The sequence encoders (embed, parallel_cnn, stacked_cnn, rnn, transformer) over token ids and over
time series: shapes and masks, padding invariance, rows of padding only, reference computations, and
that each can learn a small task."""
import math

import marshmallow
import pytest
import torch
from torch import nn

from framework.config.fields import defaults_of
from framework.errors import FrameworkError
from framework.models.build import build
from framework.registry import encoders

NAMES = ["embed", "parallel_cnn", "stacked_cnn", "rnn", "transformer"]
KINDS = ["text", "timeseries"]
VOCAB = ["<PAD>", "<UNK>", "<SOS>", "<EOS>"] + [f"w{i}" for i in range(8)]
SMALL = {"embedding_size": 8, "num_filters": 4, "output_size": 8, "state_size": 8, "hidden_size": 8,
         "num_heads": 2, "feedforward_size": 16}
# settings beyond the defaults whose padding handling differs
VARIANTS = [
    ("embed", {"reduce_output": "max", "output_size": 6}),
    ("embed", {"reduce_output": "sum"}),
    ("parallel_cnn", {"num_fc_layers": 2, "norm": "batch", "reduce_output": "mean"}),
    ("parallel_cnn", {"reduce_output": "last"}),
    ("stacked_cnn", {"pool_size": 2, "num_conv_layers": 3}),
    ("stacked_cnn", {"filter_size": 4, "num_fc_layers": 1, "norm": "layer"}),
    ("rnn", {"cell_type": "gru", "bidirectional": True, "num_layers": 2}),
    ("rnn", {"cell_type": "rnn", "reduce_output": "mean"}),
    ("rnn", {"bidirectional": True, "reduce_output": "max"}),
    ("transformer", {"positional_encoding": "learned", "reduce_output": "first", "num_layers": 2}),
    ("transformer", {"reduce_output": "last"}),
]
ALL = [(name, {}) for name in NAMES] + VARIANTS


def make(name: str, kind: str, pad_id: int = 0, **settings) -> nn.Module:
    entry = encoders.get(name, kind)
    defaults = defaults_of(entry.schema)
    resolved = entry.schema().load({**{k: v for k, v in SMALL.items() if k in defaults}, **settings})
    return build(entry, {"vocab_size": len(VOCAB), "pad_id": pad_id, "vocab": VOCAB}, resolved)


def batch(kind: str, lengths: list[int], width: int | None = None, pad_id: int = 0, seed: int = 0) -> torch.Tensor:
    """Rows of the given lengths padded to `width` (default: the longest): ids avoiding pad_id, or values
    padded with NaN."""
    generator = torch.Generator().manual_seed(seed)
    width = width or max(lengths)
    if kind == "timeseries":
        values = torch.randn(len(lengths), width, generator=generator)
        return values.masked_fill(torch.arange(width) >= torch.tensor(lengths).unsqueeze(1), float("nan"))
    ids = torch.randint(1, len(VOCAB), (len(lengths), width), generator=generator)
    ids = torch.where(ids == pad_id, 0, ids) if pad_id != 0 else ids
    return ids.masked_fill(torch.arange(width) >= torch.tensor(lengths).unsqueeze(1), pad_id)


def widen(x: torch.Tensor, width: int, pad_id: int = 0) -> torch.Tensor:
    """The same rows with more padding after them."""
    pad = float("nan") if x.is_floating_point() else pad_id
    return torch.cat([x, x.new_full((x.shape[0], width - x.shape[1]), pad)], dim=1)


def params(cases):
    return [pytest.param(name, kind, settings, id=f"{name}-{kind}-{'-'.join(map(str, settings.values())) or 'default'}")
            for name, settings in cases for kind in KINDS]


@pytest.mark.parametrize("name, kind, settings", params(ALL))
def test_shapes_mask_and_zero_states_at_padding(name, kind, settings):
    torch.manual_seed(0)
    encoder = make(name, kind, **settings).train()
    lengths = [3, 1, 5, 2]
    out = encoder(batch(kind, lengths))
    expected_length = 5 if settings.get("pool_size") is None else 1  # 5 -> 3 -> 2 -> 1 with windows of 2
    assert out.pooled.shape == (4, encoder.output_size)
    assert out.states.shape == (4, expected_length, encoder.output_size)
    assert out.mask.dtype == torch.bool and out.mask.shape == (4, expected_length)
    if expected_length == 5:
        assert out.mask.tolist() == [[i < n for i in range(5)] for n in lengths]
    assert torch.all(out.states[~out.mask] == 0)
    assert out.pooled.dtype == torch.float32 and torch.isfinite(out.pooled).all()


@pytest.mark.parametrize("name, kind, settings", params(ALL))
def test_padding_changes_nothing(name, kind, settings):
    """A row gives the same output alone, in a batch, and in a batch padded far beyond its length."""
    torch.manual_seed(0)
    encoder = make(name, kind, **settings).eval()
    x = batch(kind, [4, 1, 7, 2, 5], seed=1)
    with torch.no_grad():
        together = encoder(x)
        padded = encoder(widen(x, 13))
        alone = encoder(x[2:3, :7])
        short = encoder(x[1:2, :1])
    torch.testing.assert_close(padded.pooled, together.pooled, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(alone.pooled[0], together.pooled[2], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(short.pooled[0], together.pooled[1], rtol=1e-5, atol=1e-5)
    length = together.states.shape[1]
    torch.testing.assert_close(padded.states[:, :length], together.states, rtol=1e-5, atol=1e-5)
    assert torch.equal(padded.mask[:, :length], together.mask) and not padded.mask[:, length:].any()


@pytest.mark.parametrize("name, kind, settings", params(ALL))
def test_rows_of_padding_only_are_finite_and_zero(name, kind, settings):
    torch.manual_seed(0)
    encoder = make(name, kind, **settings).train()
    x = batch(kind, [0, 3, 0, 2])
    out = encoder(x)
    assert torch.isfinite(out.pooled).all() and torch.isfinite(out.states).all()
    assert torch.all(out.pooled[[0, 2]] == 0) and not out.mask[[0, 2]].any()
    out.pooled.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", NAMES)
def test_the_mask_is_ids_not_equal_to_pad_id_not_zero(name):
    """A tokenizer whose pad token is id 3: id 0 is a real token and 3 is padding."""
    torch.manual_seed(0)
    encoder = make(name, "text", pad_id=3).eval()
    ids = torch.tensor([[0, 5, 0, 3, 3], [7, 3, 3, 3, 3]])
    out = encoder(ids)
    assert out.mask.tolist() == [[True, True, True, False, False], [True, False, False, False, False]]
    with torch.no_grad():
        torch.testing.assert_close(encoder(ids[:, :3]).pooled, out.pooled, rtol=1e-5, atol=1e-5)


def test_embed_is_the_mean_of_the_real_tokens_embeddings():
    encoder = make("embed", "text").eval()
    ids = torch.tensor([[4, 6, 9, 0], [5, 0, 0, 0]])
    table = encoder.inputs.embedding.weight
    expected = torch.stack([table[[4, 6, 9]].mean(0), table[5]])
    torch.testing.assert_close(encoder(ids).pooled, expected)


def test_timeseries_steps_are_projected_and_nan_is_padding():
    encoder = make("embed", "timeseries", reduce_output="sum").eval()
    values = torch.tensor([[0.5, -2.0, float("nan")]])
    project = encoder.inputs.project
    expected = project(torch.tensor([[0.5], [-2.0]])).sum(0, keepdim=True)
    torch.testing.assert_close(encoder(values).pooled, expected)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_rnn_last_is_the_final_state_of_the_unpadded_row(bidirectional):
    """Against torch's LSTM run on the row's real tokens alone, with no packing."""
    torch.manual_seed(0)
    encoder = make("rnn", "text", bidirectional=bidirectional).eval()
    ids = torch.tensor([[4, 6, 9, 0, 0], [5, 7, 8, 10, 11]])
    pooled = encoder(ids).pooled
    for row, length in enumerate([3, 5]):
        _, (hidden, _) = encoder.body.rnn(encoder.inputs.embedding(ids[row:row + 1, :length]))
        torch.testing.assert_close(pooled[row], hidden.transpose(0, 1).reshape(-1), rtol=1e-5, atol=1e-6)


def test_transformer_matches_its_layers_on_the_unpadded_row():
    """Against the same layers run on the row's real tokens alone, with no mask at all."""
    torch.manual_seed(0)
    encoder = make("transformer", "text", embedding_size=6).eval()
    ids = torch.tensor([[4, 6, 9, 0, 0]])
    body = encoder.body
    with torch.no_grad():
        x = body.project(encoder.inputs.embedding(ids[:, :3]))
        expected = body.layers(x + body.positions(x)).mean(dim=1)
        torch.testing.assert_close(encoder(ids).pooled, expected, rtol=1e-5, atol=1e-5)


def test_sinusoidal_positions_follow_the_formula():
    encoder = make("transformer", "text", hidden_size=6, num_heads=2)
    table = encoder.body.positions(torch.zeros(1, 4, 6))
    position, i = 3, 2  # the pair of columns 2 (sin) and 3 (cos) at position 3
    angle = position / 10000 ** (i / 6)
    torch.testing.assert_close(table[position, i:i + 2], torch.tensor([math.sin(angle), math.cos(angle)]))


def test_learned_positions_refuse_rows_longer_than_they_cover():
    encoder = make("transformer", "text", positional_encoding="learned", max_sequence_length=4)
    with pytest.raises(FrameworkError, match="cover 4 tokens, but a batch has rows of 6.*max_sequence_length"):
        encoder(batch("text", [6]))


def test_stacked_cnn_pooling_shortens_states_and_mask_by_ceil():
    encoder = make("stacked_cnn", "text", pool_size=3, num_conv_layers=1)
    out = encoder(batch("text", [7, 2, 4]))
    assert out.states.shape[1] == 3 and out.mask.tolist() == [[True] * 3, [True, False, False], [True, True, False]]


def test_transformer_heads_must_divide_the_width():
    schema = encoders.get("transformer", "text").schema
    with pytest.raises(marshmallow.ValidationError) as error:
        schema().load({"hidden_size": 10, "num_heads": 3})
    assert "num_heads" in error.value.messages and "hidden_size (10)" in str(error.value.messages)


def _token_task(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Is token 5 in the row? Rows of 1-8 tokens out of 11, about half of them holding a 5."""
    lengths = torch.randint(1, 9, (n,), generator=generator)
    ids = torch.randint(1, len(VOCAB), (n, 8), generator=generator)
    ids = torch.where(ids == 5, 6, ids)
    plant = torch.rand(n, generator=generator) < 0.5
    where = (torch.rand(n, generator=generator) * lengths).long()
    ids[plant, where[plant]] = 5
    ids = ids.masked_fill(torch.arange(8) >= lengths.unsqueeze(1), 0)
    return ids, plant.float()


def _timeseries_task(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Does the series ever rise above 1? Series of 1-8 standard normal steps."""
    lengths = torch.randint(1, 9, (n,), generator=generator)
    values = torch.randn(n, 8, generator=generator).masked_fill(torch.arange(8) >= lengths.unsqueeze(1), float("nan"))
    return values, (values.nan_to_num(-1.0).amax(dim=1) > 1).float()


TASKS = {"text": _token_task, "timeseries": _timeseries_task}
# embed's mean of the projected steps only sees the series' mean, which does not tell a peak; max does
# stacked_cnn has no FC layer by default: its width is num_filters, and 4 (SMALL) is too few to find one token
LEARNING = {("embed", "timeseries"): {"reduce_output": "max"}, ("stacked_cnn", "text"): {"num_filters": 16}}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", KINDS)
def test_learns_a_small_task(name, kind):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    encoder = make(name, kind, embedding_size=16, **LEARNING.get((name, kind), {}))
    head = nn.Linear(encoder.output_size, 1)
    model_parameters = list(encoder.parameters()) + list(head.parameters())
    optimizer = torch.optim.Adam(model_parameters, lr=0.01)
    for _ in range(200):
        x, y = TASKS[kind](64, generator)
        loss = nn.functional.binary_cross_entropy_with_logits(head(encoder(x).pooled).squeeze(-1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    encoder.eval()
    x, y = TASKS[kind](500, generator)
    with torch.no_grad():
        accuracy = ((head(encoder(x).pooled).squeeze(-1) > 0).float() == y).float().mean().item()
    assert accuracy >= 0.9, accuracy
