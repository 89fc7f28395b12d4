"""An autoregressive RNN decoder for text and sequence outputs: teacher forcing, greedy and beam search.

Training feeds the target shifted right (<SOS>, y1, ..., y{T-1}) through the RNN in one call.
Attention is Luong's global attention over the combiner's per-token states, read from the RNN's
outputs rather than fed back into its inputs, so teacher forcing stays that one call with
attention too; only free-running decoding steps token by token.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import nn

from framework.config import fields as f
from framework.models.encoded import Encoded, as_encoded
from framework.registry import register_decoder

CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}

# An RNN state as a tuple, (h,) for a GRU and (h, c) for an LSTM; each tensor is [layers, rows, hidden].
State = tuple
Step = Callable[[torch.Tensor, State], tuple[torch.Tensor, State]]


class Memory(NamedTuple):
    """What attention reads: keys [B, S, hidden], values (the states) [B, S, D], mask [B, S]."""

    keys: torch.Tensor
    values: torch.Tensor
    mask: torch.Tensor

    def repeat(self, times: int) -> "Memory":
        """Each row `times` times in a row, for the beams of beam search."""
        return Memory(*(t.repeat_interleave(times, dim=0) for t in self))


class Attention(nn.Module):
    """Scaled dot-product attention of the RNN's outputs over the encoded states, then
    tanh(W [output; context]) (Luong et al., 2015, global attention without input feeding)."""

    def __init__(self, memory_size: int, hidden_size: int):
        super().__init__()
        self.keys = nn.Linear(memory_size, hidden_size, bias=False)
        self.combine = nn.Linear(hidden_size + memory_size, hidden_size)

    def memory(self, encoded: Encoded) -> Memory:
        mask = encoded.mask
        if mask is None:
            mask = torch.ones(encoded.states.shape[:2], dtype=torch.bool, device=encoded.states.device)
        return Memory(self.keys(encoded.states), encoded.states, mask)

    def forward(self, outputs: torch.Tensor, memory: Memory) -> torch.Tensor:
        scores = outputs @ memory.keys.transpose(1, 2) / math.sqrt(outputs.shape[-1])  # [B, T, S]
        # the dtype's lowest value, not -inf: a row without a real token attends evenly instead of to NaN
        scores = scores.masked_fill(~memory.mask[:, None, :], torch.finfo(scores.dtype).min)
        context = torch.softmax(scores, dim=-1) @ memory.values.to(scores.dtype)
        return torch.tanh(self.combine(torch.cat([outputs, context], dim=-1)))


def with_argmax(scores: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """`scores` [B, T, V] changed as little as needed for their argmax at each step to be `tokens` [B, T]:
    the chosen token keeps its score, any other at or above it is lowered to just below it. The search
    may pick a token that is not its step's argmax (beam search; <PAD> after a row's <EOS>)."""
    index = tokens.unsqueeze(-1)
    chosen = scores.gather(-1, index)
    ceiling = torch.nextafter(chosen, torch.full_like(chosen, -math.inf))
    return torch.minimum(scores, ceiling).scatter(-1, index, chosen)


def greedy_search(step: Step, state: State, rows: int, *, max_length: int, sos_id: int, eos_id: int,
                  pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The most likely token at each step: (logits [rows, T', V], tokens [rows, T']), <PAD> after a
    row's <EOS>, stopping once every row has produced <EOS> or after `max_length` steps."""
    device = state[0].device
    tokens = torch.full((rows,), sos_id, dtype=torch.long, device=device)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    all_logits, all_tokens = [], []
    for _ in range(max_length):
        logits, state = step(tokens, state)
        tokens = logits.argmax(-1).masked_fill(finished, pad_id)
        all_logits.append(logits.float())
        all_tokens.append(tokens)
        finished = finished | (tokens == eos_id)
        if bool(finished.all()):  # a host sync each step; decoding is sequential anyway
            break
    return torch.stack(all_logits, dim=1), torch.stack(all_tokens, dim=1)


def _select(state: State, index: torch.Tensor) -> State:
    return tuple(t.index_select(1, index) for t in state)


def _done(scores: torch.Tensor, lengths: torch.Tensor, finished: torch.Tensor, length_penalty: float,
          max_length: int) -> torch.Tensor:
    """Rows [rows] whose best finished hypothesis no unfinished one can beat: log-probabilities only
    fall, so an unfinished one's best normalised score is its score now over max_length ** penalty."""
    normalised = scores / lengths.clamp_min(1.0) ** length_penalty
    best_finished = normalised.masked_fill(~finished, -math.inf).max(dim=1).values
    best_possible = scores.masked_fill(finished, -math.inf).max(dim=1).values / max_length ** length_penalty
    return best_finished >= best_possible


def beam_search(step: Step, state: State, rows: int, *, beam_width: int, max_length: int, sos_id: int,
                eos_id: int, pad_id: int, length_penalty: float) -> torch.Tensor:
    """The best of `beam_width` hypotheses per row by log-probability / length ** length_penalty,
    as tokens [rows, T'] with <PAD> after <EOS>.

    `state` and whatever `step` reads are already repeated per beam: row r's beams are the rows
    r * beam_width ... r * beam_width + beam_width - 1. Finished hypotheses stay in the beam with a
    fixed score, extended by <PAD> at no cost, competing with the unfinished ones. A row is done once
    no unfinished hypothesis can overtake its best finished one any more (its beams are then frozen);
    the search stops once every row is done, or after `max_length` steps.
    """
    k = beam_width
    device = state[0].device
    tokens = torch.full((rows * k,), sos_id, dtype=torch.long, device=device)
    scores = torch.full((rows, k), -math.inf, device=device)
    scores[:, 0] = 0.0  # the beams start identical: expand only the first
    lengths = torch.zeros(rows, k, device=device)
    finished = torch.zeros(rows, k, dtype=torch.bool, device=device)
    offsets = torch.arange(rows, device=device).unsqueeze(1) * k
    history, parents = [], []
    for _ in range(max_length):
        logits, state = step(tokens, state)
        log_probs = torch.log_softmax(logits.float(), dim=-1).view(rows, k, -1)
        vocab_size = log_probs.shape[-1]
        pad_only = torch.full((vocab_size,), -math.inf, device=device)
        pad_only[pad_id] = 0.0
        log_probs = torch.where(finished.unsqueeze(-1), pad_only, log_probs)
        candidates = scores.unsqueeze(-1) + log_probs  # [rows, k, V]
        grown = (lengths + (~finished).float()).clamp_min(1.0)
        normalised = candidates / (grown ** length_penalty).unsqueeze(-1)
        index = normalised.view(rows, -1).topk(k, dim=1).indices  # [rows, k] over (beam, token) pairs
        parent, chosen = index // vocab_size, index % vocab_size
        scores = candidates.view(rows, -1).gather(1, index)
        lengths = grown.gather(1, parent)
        finished = finished.gather(1, parent) | (chosen == eos_id)
        finished = finished | _done(scores, lengths, finished, length_penalty, max_length).unsqueeze(1)
        state = _select(state, (parent + offsets).view(-1))
        history.append(chosen)
        parents.append(parent)
        tokens = chosen.view(-1)
        if bool(finished.all()):  # a host sync each step; decoding is sequential anyway
            break
    best = (scores / lengths.clamp_min(1.0) ** length_penalty).argmax(dim=1, keepdim=True)  # [rows, 1]
    best_tokens = []
    for step_tokens, step_parents in zip(reversed(history), reversed(parents)):
        best_tokens.append(step_tokens.gather(1, best))
        best = step_parents.gather(1, best)
    return torch.cat(best_tokens[::-1], dim=1)


class GeneratorSchema(f.Schema):
    cell_type = f.Choice(CELLS, "gru", doc="recurrent cell: gru or lstm")
    num_layers = f.Int(1, min=1, doc="stacked recurrent layers")
    hidden_size = f.Int(256, min=1, doc="width of the recurrent state")
    embedding_size = f.Int(64, min=1, doc="width of the embedding of the previous token")
    attention = f.Bool(True, doc="attend over the combiner's per-token states, where the combiner keeps them")
    dropout = f.Float(0.0, min=0.0, max=1.0, max_inclusive=False,
                      doc="dropout on token embeddings, between recurrent layers and before the output layer")
    beam_width = f.Int(1, min=1, doc="hypotheses kept while decoding: 1 is greedy decoding, more is beam search")
    length_penalty = f.Float(1.0, min=0.0, doc="beam scores are log-probability / length ** length_penalty "
                                               "(0: raw log-probability, which favours short outputs)")
    max_decode_length = f.Int(None, min=1, doc="the most tokens decoded per row, <EOS> included; "
                                               "null: the longest training target")


@register_decoder("generator", schema=GeneratorSchema, types=("text", "sequence"))
class Generator(nn.Module):
    """Token logits [B, T, V]: teacher-forced given the target, else decoded free-running. Decoded
    logits put their argmax on the chosen token at every step and on <PAD> after a row's <EOS>; for
    beam search they are the model's log-probabilities along the best hypothesis (see `with_argmax`)."""

    input_kind = "encoded"
    teacher_forced = True

    def __init__(self, input_size: int, num_outputs: int, pad_id: int, sos_id: int, eos_id: int, max_length: int,
                 *, cell_type: str = "gru", num_layers: int = 1, hidden_size: int = 256, embedding_size: int = 64,
                 attention: bool = True, dropout: float = 0.0, beam_width: int = 1, length_penalty: float = 1.0,
                 max_decode_length: int | None = None):
        super().__init__()
        self.pad_id, self.sos_id, self.eos_id = pad_id, sos_id, eos_id
        self.max_decode_length = max_length if max_decode_length is None else max_decode_length
        self.beam_width, self.length_penalty = beam_width, length_penalty
        self.cell_type, self.num_layers, self.hidden_size = cell_type, num_layers, hidden_size
        self.embedding = nn.Embedding(num_outputs, embedding_size)
        self.rnn = CELLS[cell_type](embedding_size, hidden_size, num_layers, batch_first=True,
                                    dropout=dropout if num_layers > 1 else 0.0)
        parts = 2 if cell_type == "lstm" else 1  # an LSTM starts from h and c
        self.initial = nn.Linear(input_size, parts * num_layers * hidden_size)
        self.attention = Attention(input_size, hidden_size) if attention else None
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(hidden_size, num_outputs)

    def forward(self, encoded: Encoded | torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        encoded = as_encoded(encoded)
        return self.decode(encoded) if target is None else self.teacher_force(encoded, target)

    def teacher_force(self, encoded: Encoded, target: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, V] of each target token given the tokens before it."""
        start = torch.full_like(target[:, :1], self.sos_id)
        inputs = torch.cat([start, target[:, :-1]], dim=1)
        return self._logits(inputs, self._initial_state(encoded.pooled), self._memory(encoded))[0]

    def decode(self, encoded: Encoded) -> torch.Tensor:
        """Free-running logits [B, T', V], T' <= max_decode_length: greedy or beam search by `beam_width`."""
        if self.beam_width == 1:
            return self.greedy_decode(encoded)
        return self.beam_decode(encoded, self.beam_width)

    @torch.no_grad()
    def greedy_decode(self, encoded: Encoded) -> torch.Tensor:
        """The step logits, with <PAD> as the argmax after a row's <EOS>."""
        state, memory = self._initial_state(encoded.pooled), self._memory(encoded)
        logits, tokens = greedy_search(self._stepper(memory), state, encoded.pooled.shape[0], **self._search_ids())
        return with_argmax(logits, tokens)

    @torch.no_grad()
    def beam_decode(self, encoded: Encoded, beam_width: int) -> torch.Tensor:
        """The log-probabilities along each row's best hypothesis (teacher-forced over its tokens, one
        call), with the hypothesis's token as the argmax of every step."""
        state = tuple(t.repeat_interleave(beam_width, dim=1) for t in self._initial_state(encoded.pooled))
        memory = self._memory(encoded)
        stepper = self._stepper(None if memory is None else memory.repeat(beam_width))
        tokens = beam_search(stepper, state, encoded.pooled.shape[0], beam_width=beam_width,
                             length_penalty=self.length_penalty, **self._search_ids())
        log_probs = torch.log_softmax(self.teacher_force(encoded, tokens).float(), dim=-1)
        return with_argmax(log_probs, tokens)

    def _search_ids(self) -> dict:
        return dict(max_length=self.max_decode_length, sos_id=self.sos_id, eos_id=self.eos_id, pad_id=self.pad_id)

    def _initial_state(self, pooled: torch.Tensor) -> State:
        start = torch.tanh(self.initial(pooled))  # [B, parts * layers * hidden]
        start = start.view(pooled.shape[0], -1, self.num_layers, self.hidden_size).permute(1, 2, 0, 3)
        return tuple(part.contiguous() for part in start)

    def _memory(self, encoded: Encoded) -> Memory | None:
        if self.attention is None or encoded.states is None:
            return None  # no per-token states (a combiner that pools): decode from the pooled vector alone
        return self.attention.memory(encoded)

    def _logits(self, inputs: torch.Tensor, state: State, memory: Memory | None) -> tuple[torch.Tensor, State]:
        embedded = self.dropout(self.embedding(inputs))
        outputs, state = self.rnn(embedded, state if self.cell_type == "lstm" else state[0])
        if memory is not None:
            outputs = self.attention(outputs, memory)
        return self.projection(self.dropout(outputs)), state if isinstance(state, tuple) else (state,)

    def _stepper(self, memory: Memory | None) -> Step:
        def step(tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
            logits, state = self._logits(tokens.unsqueeze(1), state, memory)
            return logits.squeeze(1), state
        return step
