"""Metrics of text and sequence outputs, over a whole split's predicted and target token ids.

`outputs["predictions"]` [N, T1] and `target` [N, T2] are ids padded with the output's `pad_id`
(T1 and T2 may differ); `settings["metadata"]` holds `pad_id` and `eos_id`. Everything after a
row's first <EOS> counts as padding, in predictions and targets alike.

- `token_accuracy` and `sequence_accuracy` compare ids position by position, <EOS> included: a
  sequence is right when it has every token right and ends where the target ends.
- `edit_distance`, `bleu` and `rouge` compare the token sequences before <EOS>, ids written as words,
  so they measure the framework's own tokenization. They run on the host: one `tolist()` of each
  tensor, then plain Python lists; their libraries are imported when first used.
"""
from __future__ import annotations

import torch

from framework.registry import register_metric

TYPES = ("text", "sequence")


def _ids(settings: dict) -> tuple[int, int]:
    metadata = settings["metadata"]
    return metadata["pad_id"], metadata["eos_id"]


def _after_eos_as_pad(ids: torch.Tensor, pad_id: int, eos_id: int) -> torch.Tensor:
    is_eos = ids == eos_id
    after = (torch.cumsum(is_eos, dim=1) - is_eos.long()) > 0
    return ids.masked_fill(after, pad_id)


def _aligned(outputs: dict, target: torch.Tensor, settings: dict) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Predictions and targets padded with pad_id to one length, <PAD> after each first <EOS>."""
    pad_id, eos_id = _ids(settings)
    predictions, target = outputs["predictions"].long(), target.long()
    length = max(predictions.shape[1], target.shape[1])
    predictions, target = (torch.nn.functional.pad(x, (0, length - x.shape[1]), value=pad_id)
                           for x in (predictions, target))
    return _after_eos_as_pad(predictions, pad_id, eos_id), _after_eos_as_pad(target, pad_id, eos_id), pad_id


def token_lists(ids: torch.Tensor, pad_id: int, eos_id: int) -> list[list[int]]:
    """Each row's ids before its first <EOS> (or first <PAD>, for a row without one)."""
    stop = (ids == eos_id) | (ids == pad_id)
    ends = torch.where(stop.any(dim=1), stop.int().argmax(dim=1), ids.shape[1])
    return [row[:end] for row, end in zip(ids.tolist(), ends.tolist())]


def _sequences(outputs: dict, target: torch.Tensor, settings: dict) -> tuple[list[list[int]], list[list[int]]]:
    pad_id, eos_id = _ids(settings)
    return token_lists(outputs["predictions"], pad_id, eos_id), token_lists(target, pad_id, eos_id)


def _host_value(value: float, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64, device=like.device)


@register_metric("loss", types=TYPES, goal="min")
def loss(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """The mean loss per real target token over the split."""
    return outputs["loss"]


@register_metric("perplexity", types=TYPES, goal="min")
def perplexity(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """exp of the mean token loss: meaningful for the (unsmoothed) cross entropy."""
    return torch.exp(outputs["loss"].double())


@register_metric("token_accuracy", types=TYPES, goal="max")
def token_accuracy(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """The share of real target tokens (<EOS> included) predicted at their position."""
    predictions, target, pad_id = _aligned(outputs, target, settings)
    real = target != pad_id
    return ((predictions == target) & real).sum().double() / real.sum().clamp_min(1)


@register_metric("sequence_accuracy", types=TYPES, goal="max")
def sequence_accuracy(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """The share of rows predicted exactly, up to and including <EOS>."""
    predictions, target, _ = _aligned(outputs, target, settings)
    return (predictions == target).all(dim=1).double().mean()


@register_metric("edit_distance", types=TYPES, goal="min")
def edit_distance(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """The mean Levenshtein distance, in tokens, between predicted and target sequences."""
    import editdistance

    predicted, actual = _sequences(outputs, target, settings)
    total = sum(editdistance.eval(p, a) for p, a in zip(predicted, actual))
    return _host_value(total / max(len(actual), 1), target)


@register_metric("bleu", types=TYPES, goal="max")
def bleu(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """Corpus BLEU (sacrebleu, one reference per row, no tokenization of its own) from 0 to 1."""
    from sacrebleu.metrics import BLEU

    predicted, actual = _sequences(outputs, target, settings)
    hypotheses = [" ".join(map(str, row)) for row in predicted]
    references = [" ".join(map(str, row)) for row in actual]
    score = BLEU(tokenize="none").corpus_score(hypotheses, [references]).score
    return _host_value(score / 100.0, target)


class _AlreadyTokenized:
    """rouge-score's tokenizer interface over lists of ids: nothing left to split."""

    @staticmethod
    def tokenize(tokens: list[int]) -> list[int]:
        return tokens


@register_metric("rouge", types=TYPES, goal="max")
def rouge(outputs: dict, target: torch.Tensor, settings: dict) -> torch.Tensor:
    """The mean ROUGE-L F-measure (longest common subsequence) over rows; 0 where either side is empty."""
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeL"], tokenizer=_AlreadyTokenized())
    predicted, actual = _sequences(outputs, target, settings)
    total = sum(scorer.score(a, p)["rougeL"].fmeasure for p, a in zip(predicted, actual))
    return _host_value(total / max(len(actual), 1), target)
