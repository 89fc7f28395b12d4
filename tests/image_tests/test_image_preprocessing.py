"""Decoding, resizing, channels and scaling pinned against Pillow and numpy; bad inputs counted and named."""
import io
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from encoders._image_input import ImageInput
from framework import Model
from framework.config.fields import defaults_of
from framework.data import notices
from framework.errors import ConfigError, DataError
from framework.features.image import ImageFeature, ImagePreprocessing

DEFAULTS = defaults_of(ImagePreprocessing)


def save(image: Image.Image, path) -> str:
    image.save(path)
    return str(path)


def pixels(column, **settings):
    settings = {**DEFAULTS, **settings}
    metadata = ImageFeature.fit(column, settings, "img")
    return ImageFeature.transform(column, settings, metadata, "img"), metadata


def gradient(height: int, width: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    values = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(values[..., 0] if channels == 1 else values, mode)


def test_interpolate_resizes_as_pillow_bilinear(tmp_path):
    image = gradient(10, 6)
    out, metadata = pixels(pd.Series([save(image, tmp_path / "a.png")]), height=8, width=4)
    expected = np.asarray(image.resize((4, 8), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
    assert metadata["num_channels"] == 3 and out.shape == (1, 3, 8, 4)
    np.testing.assert_array_equal(out[0], expected)


def test_crop_or_pad_keeps_the_centre_and_pads_with_zeros(tmp_path):
    image = gradient(4, 4, "L")
    out, _ = pixels(pd.Series([save(image, tmp_path / "a.png")]), height=6, width=2, resize_method="crop_or_pad")
    source = np.asarray(image)
    assert out.shape == (1, 1, 6, 2)
    np.testing.assert_array_equal(out[0, 0, 1:5], source[:, 1:3])  # columns 1-2 of 4 kept, rows padded by one
    assert (out[0, 0, [0, 5]] == 0).all()


@pytest.mark.parametrize("mode, channels", [("RGB", 1), ("L", 3), ("RGBA", 4), ("RGBA", 3)])
def test_num_channels_converts_as_pillow_does(tmp_path, mode, channels):
    image = gradient(5, 5, mode)
    out, _ = pixels(pd.Series([save(image, tmp_path / "a.png")]), num_channels=channels)
    target = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    expected = np.asarray(image.convert(target)).reshape(5, 5, channels).transpose(2, 0, 1)
    np.testing.assert_array_equal(out[0], expected)


def test_paths_bytes_arrays_and_float_arrays_give_the_same_pixels(tmp_path):
    image = gradient(6, 6)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    array = np.asarray(image)
    column = pd.Series([save(image, tmp_path / "a.png"), buffer.getvalue(), array, array / 255.0,
                        array.transpose(2, 0, 1)])
    out, _ = pixels(column)
    for row in out[1:]:
        np.testing.assert_array_equal(row, out[0])


def test_standardize_fits_per_channel_statistics_and_the_encoder_applies_them(tmp_path):
    images = [gradient(4, 4), Image.fromarray(np.full((4, 4, 3), [10, 200, 90], dtype=np.uint8))]
    column = pd.Series([save(im, tmp_path / f"{i}.png") for i, im in enumerate(images)])
    out, metadata = pixels(column, normalization="standardize")
    values = out.transpose(1, 0, 2, 3).reshape(3, -1) / 255.0
    np.testing.assert_allclose(metadata["pixel_mean"], values.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(metadata["pixel_std"], values.std(axis=1), rtol=1e-12)
    scaled = ImageInput(3, metadata["pixel_mean"], metadata["pixel_std"], []).eval()(torch.from_numpy(out))
    per_channel = scaled.transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_channel.std(1, unbiased=False), torch.ones(3), atol=1e-5, rtol=0)


def test_pixel_normalization_scales_to_unit_range_and_none_keeps_raw_values(tmp_path):
    column = pd.Series([save(gradient(3, 3), tmp_path / "a.png")])
    for normalization, divisor in (("pixel_normalization", 255.0), (None, 1.0)):
        out, metadata = pixels(column, normalization=normalization)
        scaled = ImageInput(3, metadata["pixel_mean"], metadata["pixel_std"], [])(torch.from_numpy(out))
        torch.testing.assert_close(scaled, torch.from_numpy(out).float() / divisor)


def test_mixed_sizes_are_brought_to_the_most_common_with_a_notice_saying_so(tmp_path, caplog):
    sizes = [(8, 8), (8, 8), (12, 6)]
    column = pd.Series([save(gradient(h, w), tmp_path / f"{i}.png") for i, (h, w) in enumerate(sizes)])
    with caplog.at_level(logging.WARNING, logger="framework.data"):
        out, metadata = pixels(column)
    assert (metadata["height"], metadata["width"]) == (8, 8) and out.shape == (3, 3, 8, 8)
    assert "differ in size (height x width) (8x8 in 2, 12x6 in 1); every image is brought to 8x8" in caplog.text
    assert "set preprocessing.height/width" in caplog.text


def test_missing_and_unreadable_images_are_zeros_counted_once_with_examples(tmp_path, caplog):
    good = save(gradient(4, 4), tmp_path / "good.png")
    (tmp_path / "text.png").write_text("not an image")
    truncated = (tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(truncated[: len(truncated) // 2])
    column = pd.Series([good, str(tmp_path / "absent.png"), str(tmp_path / "text.png"), None, str(tmp_path / "cut.png")])
    with caplog.at_level(logging.WARNING, logger="framework.data"), notices.collected():
        out, _ = pixels(column)
        ImageFeature.transform(column, DEFAULTS, ImageFeature.fit(column, DEFAULTS, "img"), "img")  # a second split
    assert out[1:].max() == 0 and out[0].max() > 0
    messages = [r.getMessage() for r in caplog.records]
    unreadable = [m for m in messages if "no readable image" in m]
    assert len(unreadable) == 1  # said once, totals over both calls
    assert "6 of 10 rows have no readable image" in unreadable[0]
    assert "no such file" in unreadable[0] and "not an image Pillow can read" in unreadable[0]
    assert "corrupt or truncated" in unreadable[0]
    assert any("2 of 10 rows have no value" in m for m in messages)


def test_drop_row_drops_rows_whose_image_cannot_be_read(make_shapes, make_image_config, tmp_path, caplog):
    frame = make_shapes(tmp_path, 30, seed=2)
    frame.loc[[3, 7], "image"] = ["missing_1.png", "missing_2.png"]
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    frame.loc[11, "image"] = "broken.png"
    frame.attrs["directory"] = str(tmp_path)  # a DataFrame says where its relative paths start
    config = make_image_config({"type": "stacked_cnn", "num_filters": 4, "num_conv_layers": 1},
                               {"missing_value_strategy": "drop_row"}, epochs=1)
    config["preprocessing"] = {"split": {"probabilities": [1.0, 0.0, 0.0]}}
    model = Model(config)
    with caplog.at_level(logging.WARNING, logger="framework.data"):
        result = model.train(frame, output_dir=None)
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1 and "dropped 3 rows whose image could not be read" in dropped[0]
    assert "missing_1.png" in dropped[0]
    assert len(model.predict(frame)) == 30  # prediction keeps every row (zeros images)
    del result


def test_a_training_split_with_no_readable_image_is_an_error_naming_where_paths_are_read(tmp_path):
    column = pd.Series(["nope.png", "gone.png"])
    with pytest.raises(DataError, match=r"image feature 'img': none of the first 2 images .*'nope.png': no such "
                                        r"file.*relative paths are read from the working directory"):
        ImageFeature.fit(column, DEFAULTS, "img")


def test_config_errors_name_the_key_and_the_closest_augmentation(make_image_config):
    config = make_image_config({"type": "stacked_cnn", "augmentation": [{"type": "random_rotat"},
                                                                        {"type": "random_rotate", "degree": 500}]},
                               {"height": 8})
    with pytest.raises(ConfigError) as error:
        Model(config)
    text = str(error.value)
    assert "input_features[0].encoder.augmentation[0].type" in text and "did you mean 'random_rotate'" in text
    assert "input_features[0].encoder.augmentation[1].degree" in text
    assert "input_features[0].preprocessing.width" in text and "set both height and width" in text
