"""The audio encoders: frames of several values each, NaN padding read as the mask, and a row's encoding
independent of the padding its batch adds."""
import numpy as np
import pytest
import torch

from framework.data.ragged import Ragged
from framework.models.build import build
from framework.registry import encoders

NAMES = ["embed", "parallel_cnn", "stacked_cnn", "rnn", "transformer"]


def make(name: str, input_size: int = 5):
    entry = encoders.get(name, "audio")
    torch.manual_seed(0)
    return build(entry, {"input_size": input_size}, entry.schema().load({})).eval()


def test_every_sequence_encoder_serves_audio():
    assert set(NAMES) <= set(encoders.names("audio"))


@pytest.mark.parametrize("name", NAMES)
def test_a_rows_encoding_does_not_depend_on_the_padding_of_its_batch(name):
    rng = np.random.default_rng(0)
    lengths = np.array([3, 9])
    frames = Ragged.from_lengths(rng.normal(size=(12, 5)).astype(np.float32), lengths, pad_value=np.nan)
    encoder = make(name)
    with torch.inference_mode():
        together = encoder(torch.from_numpy(frames.padded()))
        alone = encoder(torch.from_numpy(frames[[0]].padded()))
    assert together.states.shape[:2] == (2, 9) and together.mask.tolist()[0] == [True] * 3 + [False] * 6
    torch.testing.assert_close(together.pooled[0], alone.pooled[0], atol=1e-5, rtol=1e-5)


def test_frames_are_projected_from_their_width_and_nan_frames_are_padding():
    encoder = make("embed", input_size=3)
    frames = torch.tensor([[[1.0, 2.0, 3.0], [float("nan")] * 3]])
    vectors, mask = encoder.inputs(frames)
    assert mask.tolist() == [[True, False]] and vectors.shape == (1, 2, 64)
    layer = encoder.inputs.project
    torch.testing.assert_close(vectors[0, 0], layer.weight @ frames[0, 0] + layer.bias)
