"""The tagger: one set of logits per state, learned per-token labels, and a clear error without states."""
import pytest
import torch
from torch import nn

from decoders.tagger import Tagger
from framework.errors import FrameworkError
from framework.losses.sequence import SequenceSoftmaxCrossEntropy
from framework.metrics.sequence import token_accuracy
from framework.models.encoded import Encoded

V, PAD = 10, 0  # input tokens 4..9
TAGS = 6  # output ids: pad 0, unk 1, sos 2, eos 3, even 4, odd 5
WIDTH = 16


def tagging_batch(rows: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences of 2 to 8 tokens, each tagged with its parity."""
    lengths = torch.randint(2, 9, (rows,), generator=generator)
    tokens = torch.randint(4, V, (rows, 8), generator=generator)
    real = torch.arange(8) < lengths[:, None]
    return tokens.masked_fill(~real, PAD), torch.where(real, 4 + tokens % 2, PAD)


class Source(nn.Module):
    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(V, WIDTH)

    def forward(self, source: torch.Tensor) -> Encoded:
        mask = source != PAD
        states = self.tokens(source)
        return Encoded(states.mean(1), states, mask)


def test_logits_per_state_with_zeros_at_padding():
    tagger = Tagger(WIDTH, TAGS, num_fc_layers=2, norm="batch", dropout=0.1)
    source, _ = tagging_batch(5, torch.Generator().manual_seed(0))
    encoded = Source()(source)
    logits = tagger(encoded)
    assert logits.shape == (5, 8, TAGS)
    assert (logits[~encoded.mask] == 0).all() and (logits[encoded.mask] != 0).any()
    no_mask = tagger.eval()(Encoded(encoded.pooled, encoded.states))  # no mask: every state is a token
    assert no_mask.shape == (5, 8, TAGS) and (no_mask != 0).all()


def test_without_states_the_error_says_what_is_needed():
    tagger = Tagger(WIDTH, TAGS)
    for pooled_only in (Encoded(torch.randn(3, WIDTH)), torch.randn(3, WIDTH)):
        with pytest.raises(FrameworkError, match="tagger decoder needs per-token states.*sequence_concat"):
            tagger(pooled_only)


def test_learns_per_token_labels():
    torch.manual_seed(0)
    source_model, tagger = Source(), Tagger(WIDTH, TAGS, num_fc_layers=1, output_size=32)
    loss_fn = SequenceSoftmaxCrossEntropy(PAD)
    optimizer = torch.optim.Adam([*source_model.parameters(), *tagger.parameters()], lr=0.02)
    data = torch.Generator().manual_seed(0)
    for _ in range(60):
        source, tags = tagging_batch(64, data)
        loss = loss_fn(tagger(source_model(source)), tags)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    source, tags = tagging_batch(200, torch.Generator().manual_seed(1))
    with torch.no_grad():
        predictions = tagger.eval()(source_model(source)).argmax(-1)
    settings = {"metadata": {"pad_id": PAD, "eos_id": 3}}
    assert token_accuracy({"predictions": predictions}, tags, settings) >= 0.95
