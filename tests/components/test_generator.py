"""The generator: teacher forcing in one call, greedy and beam search decoding, and learning to copy."""
import pytest
import torch
from torch import nn

from decoders.generator import Generator, beam_search, greedy_search, with_argmax
from framework.losses.sequence import SequenceSoftmaxCrossEntropy
from framework.metrics.sequence import sequence_accuracy
from framework.models.encoded import Encoded

V, PAD, SOS, EOS = 10, 0, 2, 3  # ids 4..9 are the tokens
WIDTH = 16
METADATA = {"metadata": {"pad_id": PAD, "eos_id": EOS}}


def copy_batch(rows: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources of 3 to 6 random tokens, padded; targets are the sources followed by <EOS>."""
    lengths = torch.randint(3, 7, (rows,), generator=generator)
    tokens = torch.randint(4, V, (rows, 6), generator=generator)
    source = torch.where(torch.arange(6) < lengths[:, None], tokens, PAD)
    target = torch.cat([source, torch.full((rows, 1), PAD)], dim=1)
    target[torch.arange(rows), lengths] = EOS
    return source, target


class Source(nn.Module):
    """A minimal sequence encoder: token plus position embeddings, mean-pooled."""

    def __init__(self):
        super().__init__()
        self.tokens, self.positions = nn.Embedding(V, WIDTH), nn.Embedding(8, WIDTH)

    def forward(self, source: torch.Tensor) -> Encoded:
        mask = source != PAD
        states = self.tokens(source) + self.positions.weight[:source.shape[1]]
        pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        return Encoded(pooled, states, mask)


def generator(**settings) -> Generator:
    """A small generator whose context's longest training target is 7 tokens."""
    return Generator(WIDTH, V, PAD, SOS, EOS, 7, **{"hidden_size": 32, "embedding_size": 8, **settings})


def random_encoded(rows: int = 5, seed: int = 0) -> Encoded:
    torch.manual_seed(seed)
    source, _ = copy_batch(rows, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return Source()(source)


def after_first_eos(tokens: torch.Tensor) -> torch.Tensor:
    is_eos = tokens == EOS
    return (torch.cumsum(is_eos, 1) - is_eos.long()) > 0


def sequence_log_prob(model: Generator, encoded: Encoded, tokens: torch.Tensor) -> torch.Tensor:
    """log p(tokens) per row under teacher forcing, up to and including the first <EOS>."""
    with torch.no_grad():
        log_probs = torch.log_softmax(model(encoded, tokens), dim=-1)
    chosen = log_probs.gather(-1, tokens[..., None]).squeeze(-1)
    return chosen.masked_fill(after_first_eos(tokens), 0.0).sum(1)


@pytest.mark.parametrize("cell_type", ["gru", "lstm"])
@pytest.mark.parametrize("attention", [True, False])
def test_teacher_forced_logits_are_one_per_target_token(cell_type, attention):
    model = generator(cell_type=cell_type, attention=attention, num_layers=2, dropout=0.1)
    encoded = random_encoded()
    target = torch.randint(4, V, (5, 9))
    assert model(encoded, target).shape == (5, 9, V)
    assert model(Encoded(encoded.pooled), target).shape == (5, 9, V)  # no states: attention is skipped
    assert model(encoded.pooled, target).shape == (5, 9, V)  # a combiner's plain tensor reads as pooled


def test_teacher_forcing_is_causal():
    model = generator().eval()
    encoded = random_encoded()
    target = torch.randint(4, V, (5, 6))
    changed = target.clone()
    changed[:, 3] = 4 + (target[:, 3] - 3) % 6  # another token at step 3
    a, b = model(encoded, target), model(encoded, changed)
    torch.testing.assert_close(a[:, :4], b[:, :4])  # step t sees the tokens before t only
    assert not torch.allclose(a[:, 4], b[:, 4])


@pytest.mark.parametrize("cell_type", ["gru", "lstm"])
@pytest.mark.parametrize("attention", [True, False])
def test_one_call_teacher_forcing_matches_step_by_step_decoding(cell_type, attention):
    model = generator(cell_type=cell_type, num_layers=2, attention=attention).eval()
    encoded = random_encoded()
    decoded = model(encoded)
    tokens = decoded.argmax(-1)
    forced = model(encoded, tokens)  # from <SOS>, fed the decoded tokens
    before = ~after_first_eos(tokens)
    torch.testing.assert_close(decoded[before], forced[before], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell_type", ["gru", "lstm"])
def test_greedy_and_beam_search_with_one_beam_agree(cell_type):
    model = generator(cell_type=cell_type).eval()
    encoded = random_encoded(rows=8)
    greedy, beam = model.greedy_decode(encoded), model.beam_decode(encoded, 1)
    assert torch.equal(greedy.argmax(-1), beam.argmax(-1))
    torch.testing.assert_close(torch.log_softmax(greedy, -1), beam, atol=1e-5, rtol=1e-5)


def test_beam_search_finds_sequences_at_least_as_likely_as_greedy():
    torch.manual_seed(1)
    model = generator(beam_width=4, length_penalty=0.0).eval()
    encoded = random_encoded(rows=16, seed=1)
    greedy_tokens = model.greedy_decode(encoded).argmax(-1)
    beam_tokens = model(encoded).argmax(-1)
    greedy_score = sequence_log_prob(model, encoded, greedy_tokens)
    beam_score = sequence_log_prob(model, encoded, beam_tokens)
    assert (beam_score >= greedy_score - 1e-5).all()


def test_decoded_logits_are_the_beams_log_probabilities():
    model = generator(beam_width=3, length_penalty=0.0).eval()
    encoded = random_encoded()
    decoded = model(encoded)
    tokens = decoded.argmax(-1)
    # the chosen token's value is its model log-probability; the row sums to the hypothesis's score
    chosen = decoded.gather(-1, tokens[..., None]).squeeze(-1).masked_fill(after_first_eos(tokens), 0.0)
    torch.testing.assert_close(chosen.sum(1), sequence_log_prob(model, encoded, tokens))


@pytest.mark.parametrize("beam_width", [1, 3])
def test_decoding_runs_to_the_longest_target_when_no_row_ends(beam_width):
    model = generator(beam_width=beam_width).eval()  # max_decode_length null: the context's 7
    with torch.no_grad():
        model.projection.bias[EOS] = -100.0
    assert model(random_encoded()).shape == (5, 7, V)
    model.max_decode_length = 3
    assert model(random_encoded()).shape == (5, 3, V)


def markov_step(tables: torch.Tensor):
    """A step function over fixed next-token probabilities: tables[row, previous token] -> [V]. The
    state carries each hypothesis's row, so reordering beams across rows would show."""
    def step(tokens, state):
        rows = state[0][0, :, 0].long()
        return torch.log(tables[rows, tokens] + 1e-12), state
    return step


def test_beam_search_on_a_constructed_example_where_greedy_is_myopic():
    tables = torch.zeros(2, 6, 6)  # two rows, ids: pad 0, unk 1, sos 2, eos 3, a 4, b 5
    tables[:, [EOS, PAD], PAD] = 1.0  # after <EOS> (and what follows it): pad
    # row 0: greedy takes a (0.6) then <EOS> (0.4): 0.24; b (0.4) then <EOS> (0.95) is likelier: 0.38
    tables[0, SOS, [4, 5]] = torch.tensor([0.6, 0.4])
    tables[0, 4, [EOS, 4, 5]] = torch.tensor([0.4, 0.3, 0.3])
    tables[0, 5, [EOS, 4]] = torch.tensor([0.95, 0.05])
    # row 1: <EOS> right away (0.55) beats a <EOS> (0.45) in raw probability, not per token
    tables[1, SOS, [EOS, 4]] = torch.tensor([0.55, 0.45])
    tables[1, 4, [EOS, 5]] = torch.tensor([0.99, 0.01])
    state = (torch.arange(2.0).view(1, 2, 1),)
    ids = dict(max_length=5, sos_id=SOS, eos_id=EOS, pad_id=PAD)
    _, greedy = greedy_search(markov_step(tables), state, 2, **ids)
    assert greedy.tolist() == [[4, EOS], [EOS, PAD]]
    beams = (state[0].repeat_interleave(3, dim=1),)
    raw = beam_search(markov_step(tables), beams, 2, beam_width=3, length_penalty=0.0, **ids)
    assert raw.tolist() == [[5, EOS], [EOS, PAD]]
    per_token = beam_search(markov_step(tables), beams, 2, beam_width=3, length_penalty=1.0, **ids)
    assert per_token.tolist() == [[5, EOS, PAD], [4, EOS, PAD]]  # row 0 ran a step longer: a a <EOS> could have won


def test_rows_that_end_early_are_padded_after_eos():
    tables = torch.zeros(3, 6, 6)
    tables[:, [EOS, PAD], PAD] = 1.0
    tables[0, SOS, EOS] = 1.0  # ends at once
    tables[1, SOS, 4], tables[1, 4, EOS] = 1.0, 1.0  # after one token
    tables[2, SOS, 4], tables[2, 4, 5], tables[2, 5, 4] = 1.0, 1.0, 1.0  # never
    state = (torch.arange(3.0).view(1, 3, 1),)
    ids = dict(max_length=4, sos_id=SOS, eos_id=EOS, pad_id=PAD)
    expected = [[EOS, PAD, PAD, PAD], [4, EOS, PAD, PAD], [4, 5, 4, 5]]
    logits, greedy = greedy_search(markov_step(tables), state, 3, **ids)
    assert greedy.tolist() == expected
    assert with_argmax(logits, greedy).argmax(-1).tolist() == expected
    beams = (state[0].repeat_interleave(2, dim=1),)
    assert beam_search(markov_step(tables), beams, 3, beam_width=2, length_penalty=1.0, **ids).tolist() == expected


def test_with_argmax_changes_only_what_outranks_the_chosen_token():
    scores = torch.tensor([[[0.5, 2.0, 1.0, 2.0], [3.0, 1.0, 1.0, 0.0]]])
    forced = with_argmax(scores, torch.tensor([[2, 0]]))
    assert forced.argmax(-1).tolist() == [[2, 0]]
    assert forced[0, 0, 0] == 0.5 and forced[0, 0, 2] == 1.0 and (forced[0, 0, [1, 3]] < 1.0).all()
    assert (forced[0, 0, [1, 3]] > 0.9999).all()
    assert torch.equal(forced[0, 1], scores[0, 1])  # already the argmax: unchanged


def test_learns_to_copy_with_attention():
    torch.manual_seed(0)
    source_model, model = Source(), generator(hidden_size=64, embedding_size=16)
    loss_fn = SequenceSoftmaxCrossEntropy(PAD)
    optimizer = torch.optim.Adam([*source_model.parameters(), *model.parameters()], lr=0.01)
    data = torch.Generator().manual_seed(0)
    for _ in range(150):
        source, target = copy_batch(64, data)
        loss = loss_fn(model(source_model(source), target), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    source, target = copy_batch(200, torch.Generator().manual_seed(1))
    with torch.no_grad():
        encoded = source_model(source)
        for beam_width in (1, 3):
            model.beam_width = beam_width
            predictions = model(encoded).argmax(-1)
            assert predictions.shape[1] <= 7  # the longest training target
            assert (predictions[after_first_eos(predictions)] == PAD).all()
            assert sequence_accuracy({"predictions": predictions}, target, METADATA) >= 0.9, beam_width
