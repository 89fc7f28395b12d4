"""Concatenates the inputs token by token: sequence states side by side, other inputs repeated per token."""
from torch import nn

from combiners._sequence import REDUCTIONS, concat_per_token, reduce_states
from framework.config import fields as f
from framework.models.encoded import Encoded
from framework.registry import register_combiner


class SequenceConcatSchema(f.Schema):
    reduce_output = f.Choice(REDUCTIONS, "mean", doc="how the per-token states become one vector per row "
                                                     "(the states themselves are always handed on, for a tagger)")


@register_combiner("sequence_concat", schema=SequenceConcatSchema)
class SequenceConcatCombiner(nn.Module):
    """Per-token concatenation of every input: the states of the sequence inputs side by side, each
    other input's vector repeated at every token; no trainable weights.

    Needs at least one input whose encoder returns per-token states (text, sequence, timeseries).
    Sequence inputs are aligned by position; where their lengths differ the shorter are padded with
    zeros and a token is real where any input has one. Returns `Encoded(pooled, states, mask)`: the
    states `[B, T, sum of input sizes]` (zero at padding), and `pooled` their `reduce_output` over the
    real tokens.
    """

    def __init__(self, input_sizes: dict[str, int], *, reduce_output: str = "mean"):
        super().__init__()
        self.names = list(input_sizes)
        self.reduce_output = reduce_output
        self.output_size = sum(input_sizes.values())

    def forward(self, encoded: dict[str, Encoded]) -> Encoded:
        states, mask = concat_per_token(encoded, self.names, "sequence_concat")
        return Encoded(reduce_states(states, mask, self.reduce_output), states, mask)
