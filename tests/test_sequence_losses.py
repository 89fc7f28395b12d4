"""The sequence cross entropy against torch's reference, with padding ignored."""
import math

import pytest
import torch
from torch.nn import functional

from framework.losses.sequence import SequenceSoftmaxCrossEntropy, fit_length
from framework.registry import losses

PAD = 0
TARGET = torch.tensor([[5, 6, 3, 0], [4, 3, 0, 0], [7, 7, 7, 3]])  # ids, <EOS> = 3, padded with 0


def test_equals_cross_entropy_with_ignore_index():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 8)
    for smoothing in (0.0, 0.1):
        expected = functional.cross_entropy(logits.reshape(-1, 8), TARGET.reshape(-1), ignore_index=PAD,
                                            label_smoothing=smoothing)
        torch.testing.assert_close(SequenceSoftmaxCrossEntropy(PAD, label_smoothing=smoothing)(logits, TARGET),
                                   expected)


def test_logits_at_padding_do_not_count():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 8, requires_grad=True)
    changed = logits.detach().clone()
    changed[TARGET == PAD] = 100 * torch.randn(int((TARGET == PAD).sum()), 8)
    loss = SequenceSoftmaxCrossEntropy(PAD)
    torch.testing.assert_close(loss(logits, TARGET), loss(changed, TARGET))
    loss(logits, TARGET).backward()
    assert (logits.grad[TARGET == PAD] == 0).all() and (logits.grad[TARGET != PAD] != 0).any()


def test_a_pad_id_other_than_zero():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 3, 6), torch.tensor([[1, 2, 5], [0, 5, 5]])  # pad_id 5
    expected = functional.cross_entropy(logits.reshape(-1, 6), target.reshape(-1), ignore_index=5)
    torch.testing.assert_close(SequenceSoftmaxCrossEntropy(5)(logits, target), expected)


def test_free_running_logits_are_cut_or_padded_to_the_target():
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 8)
    loss = SequenceSoftmaxCrossEntropy(PAD)
    torch.testing.assert_close(loss(logits, TARGET), loss(logits[:, :4], TARGET))
    # two steps short: the missing steps score as a uniform guess, log 8 for each real token there
    short = loss(logits[:, :2], TARGET)
    real_late = int((TARGET[:, 2:] != PAD).sum())
    early = functional.cross_entropy(logits[:, :2].reshape(-1, 8), TARGET[:, :2].reshape(-1), ignore_index=PAD,
                                     reduction="sum")
    torch.testing.assert_close(short, (early + real_late * math.log(8)) / int((TARGET != PAD).sum()))
    assert fit_length(logits, 9).shape == (3, 9, 8)


def test_token_count_and_a_batch_of_only_padding():
    loss = SequenceSoftmaxCrossEntropy(PAD)
    assert int(loss.token_count(TARGET)) == 9
    empty = loss(torch.randn(2, 3, 8), torch.zeros(2, 3, dtype=torch.long))
    assert empty.item() == 0.0


def test_registered_for_text_and_sequence():
    assert losses.get("sequence_softmax_cross_entropy", "text").cls is SequenceSoftmaxCrossEntropy
    assert losses.types_of("sequence_softmax_cross_entropy") == ["sequence", "text"]
    with pytest.raises(KeyError):
        losses.get("sequence_softmax_cross_entropy", "category")
