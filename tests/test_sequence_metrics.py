"""Sequence metrics against hand computations and the reference libraries called directly."""
import math

import pytest
import torch

from framework.metrics.sequence import (bleu, edit_distance, perplexity, rouge, sequence_accuracy, token_accuracy,
                                        token_lists)
from framework.registry import metrics

PAD, EOS = 0, 3
SETTINGS = {"metadata": {"pad_id": PAD, "eos_id": EOS, "vocab": [str(i) for i in range(20)]}}
# targets end with <EOS>; predictions are cut after their first <EOS> and padded to their own length
TARGET = torch.tensor([[5, 6, 7, EOS, PAD],
                       [4, 4, EOS, PAD, PAD],
                       [8, 9, 10, 11, EOS]])
PREDICTIONS = torch.tensor([[5, 6, 7, EOS, PAD, PAD],  # exact
                            [4, 5, 4, EOS, PAD, PAD],  # a token inserted
                            [8, 9, 12, 13, 14, 15]])  # two wrong, no <EOS> before max length


def outputs(predictions=PREDICTIONS, loss=None):
    return {"predictions": predictions, **({} if loss is None else {"loss": loss})}


def test_token_lists_stop_at_eos_or_padding():
    assert token_lists(PREDICTIONS, PAD, EOS) == [[5, 6, 7], [4, 5, 4], [8, 9, 12, 13, 14, 15]]
    assert token_lists(TARGET, PAD, EOS) == [[5, 6, 7], [4, 4], [8, 9, 10, 11]]


def test_token_accuracy_over_real_target_tokens():
    # row 0: 4 of 4; row 1: 4, 4!=5, EOS!=4 -> 1 of 3; row 2: 8, 9 right, 10, 11, EOS wrong -> 2 of 5
    assert token_accuracy(outputs(), TARGET, SETTINGS).item() == pytest.approx(7 / 12)


def test_sequence_accuracy_includes_the_end():
    assert sequence_accuracy(outputs(), TARGET, SETTINGS).item() == pytest.approx(1 / 3)
    too_long = torch.tensor([[5, 6, 7, 8, EOS]])  # every target token right, then more before <EOS>
    assert sequence_accuracy(outputs(too_long), TARGET[:1], SETTINGS).item() == 0.0
    after_eos = torch.tensor([[5, 6, 7, EOS, 9, 9]])  # what follows <EOS> is padding, if not cut already
    assert sequence_accuracy(outputs(after_eos), TARGET[:1], SETTINGS).item() == 1.0
    assert token_accuracy(outputs(after_eos), TARGET[:1], SETTINGS).item() == 1.0


def test_edit_distance_in_tokens():
    # row 0: 0; row 1: [4, 5, 4] vs [4, 4]: one deletion; row 2: [8, 9, 12, 13, 14, 15] vs [8, 9, 10, 11]:
    # two substitutions and two deletions
    assert edit_distance(outputs(), TARGET, SETTINGS).item() == pytest.approx((0 + 1 + 4) / 3)


def test_bleu_is_sacrebleus_corpus_bleu_over_ids_as_words():
    import sacrebleu

    torch.manual_seed(0)
    target = torch.randint(4, 12, (20, 9))
    target[:, -1] = EOS
    predictions = torch.where(torch.rand(20, 9) < 0.8, target, torch.randint(4, 12, (20, 9)))
    predictions[:, -1] = EOS
    words = lambda rows: [" ".join(str(i) for i in row[:-1]) for row in rows.tolist()]
    expected = sacrebleu.corpus_bleu(words(predictions), [words(target)], tokenize="none").score / 100
    value = bleu(outputs(predictions), target, SETTINGS).item()
    assert 0.2 < value < 1.0 and value == pytest.approx(expected)
    assert bleu(outputs(target), target, SETTINGS).item() == pytest.approx(1.0)


def test_rouge_l_by_hand():
    # row 0: exact, 1; row 1: LCS([4,5,4], [4,4]) = 2: P 2/3, R 1 -> F 0.8;
    # row 2: LCS 2: P 2/6, R 2/4 -> F 2 * (1/3 * 1/2) / (1/3 + 1/2) = 0.4
    assert rouge(outputs(), TARGET, SETTINGS).item() == pytest.approx((1 + 0.8 + 0.4) / 3)


def test_rouge_matches_rouge_score_on_words():
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeL"])
    rows = zip(token_lists(PREDICTIONS, PAD, EOS), token_lists(TARGET, PAD, EOS))
    words = lambda ids: " ".join(f"t{i}" for i in ids)
    expected = sum(scorer.score(words(t), words(p))["rougeL"].fmeasure for p, t in rows) / 3
    assert rouge(outputs(), TARGET, SETTINGS).item() == pytest.approx(expected)


def test_loss_and_perplexity():
    loss = torch.tensor(1.25)
    assert metrics.get("loss", "text").cls(outputs(loss=loss), TARGET, SETTINGS) is loss
    assert perplexity(outputs(loss=loss), TARGET, SETTINGS).item() == pytest.approx(math.exp(1.25))


@pytest.mark.parametrize("name, goal", [("loss", "min"), ("perplexity", "min"), ("token_accuracy", "max"),
                                        ("sequence_accuracy", "max"), ("edit_distance", "min"), ("bleu", "max"),
                                        ("rouge", "max")])
def test_registered_for_text_and_sequence_with_their_goal(name, goal):
    for data_type in ("text", "sequence"):
        entry = metrics.get(name, data_type)
        assert entry.extra["goal"] == goal and set(entry.types) == {"text", "sequence"}
    value = entry.cls(outputs(loss=torch.tensor(0.5)), TARGET, SETTINGS)
    assert value.shape == () and value.dtype in (torch.float32, torch.float64)
