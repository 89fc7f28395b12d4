"""Augmentation changes training batches only, draws per image, and matches torchvision's formulas."""
import pytest
import torch

from encoders._image_input import AUGMENTATIONS, ImageInput, brightness, contrast
from encoders.image_cnn import ImageStackedCNNEncoder

ALL = [{"type": "random_horizontal_flip"}, {"type": "random_vertical_flip"}, {"type": "random_rotate", "degree": 30},
       {"type": "random_crop", "min_scale": 0.5}, {"type": "random_brightness", "min": 0.5, "max": 1.5},
       {"type": "random_contrast", "min": 0.5, "max": 1.5}]


def batch(channels: int = 3, n: int = 8) -> torch.Tensor:
    return torch.randint(0, 256, (n, channels, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_every_listed_operation_is_registered():
    assert {step["type"] for step in ALL} == set(AUGMENTATIONS)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_augmentation_runs_in_training_mode_only(channels):
    layer = ImageInput(channels, [0.0] * channels, [1.0] * channels, ALL)
    pixels = batch(channels)
    plain = pixels.float() / 255
    torch.manual_seed(0)
    trained = layer.train()(pixels)
    assert trained.shape == plain.shape and not torch.equal(trained, plain)
    torch.testing.assert_close(layer.eval()(pixels), plain, rtol=0, atol=0)


def test_an_encoder_in_eval_mode_is_deterministic_and_in_training_mode_is_not():
    encoder = ImageStackedCNNEncoder(3, 12, 12, [0.0] * 3, [1.0] * 3, augmentation=ALL, conv_norm=None)
    pixels = batch()
    encoder.eval()
    torch.testing.assert_close(encoder(pixels), encoder(pixels), rtol=0, atol=0)
    encoder.train()
    assert not torch.equal(encoder(pixels), encoder(pixels))


def test_flips_are_drawn_per_image_not_per_batch():
    layer = ImageInput(1, [0.0], [1.0], [{"type": "random_horizontal_flip", "p": 0.5}]).train()
    pixels = batch(1, 64)
    torch.manual_seed(1)
    out = layer(pixels) * 255
    flipped = torch.tensor([torch.allclose(o, p.float().flip(-1), atol=1e-3) for o, p in zip(out, pixels)])
    kept = torch.tensor([torch.allclose(o, p.float(), atol=1e-3) for o, p in zip(out, pixels)])
    assert (flipped | kept).all() and 10 < flipped.sum() < 54


def test_brightness_and_contrast_follow_torchvisions_formulas_per_image():
    x = batch().float() / 255
    factors = torch.tensor([0.5, 1.0, 1.5, 2.0, 0.0, 1.2, 0.8, 1.0])
    torch.testing.assert_close(brightness(x, factors), (x * factors.view(-1, 1, 1, 1)).clamp(0, 1))
    # torchvision.transforms.v2.functional.adjust_contrast: blend with the mean of rgb_to_grayscale
    gray = 0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    mean = gray.mean(dim=(-2, -1)).view(-1, 1, 1, 1)
    expected = (factors.view(-1, 1, 1, 1) * x + (1 - factors.view(-1, 1, 1, 1)) * mean).clamp(0, 1)
    torch.testing.assert_close(contrast(x, factors), expected)


def test_alpha_is_left_alone_by_colour_operations():
    x = batch(4).float() / 255
    out = brightness(x, torch.full((8,), 2.0))
    torch.testing.assert_close(out[:, 3], x[:, 3], rtol=0, atol=0)


def test_zero_rotation_and_a_full_scale_crop_leave_images_as_they_are():
    x = batch().float() / 255
    for step in ({"type": "random_rotate", "degree": 0.0}, {"type": "random_crop", "min_scale": 1.0}):
        out = ImageInput(3, [0.0] * 3, [1.0] * 3, [step]).train()(batch())
        torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_a_quarter_turn_of_a_square_image_is_rot90():
    x = batch().float() / 255
    from encoders import _image_input

    angle = torch.full((8,), 90.0)
    original = _image_input._uniform
    _image_input._uniform = lambda n, low, high, like: angle[:n].to(like.dtype)
    try:
        out = _image_input._rotate(x, 90.0)
    finally:
        _image_input._uniform = original
    candidates = [torch.rot90(x, k, dims=(-2, -1)) for k in (1, 3)]
    assert min((out - c).abs().max().item() for c in candidates) < 1e-4
