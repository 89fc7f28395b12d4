"""The huggingface image encoder on a tiny random ViT saved to disk: frozen with its embeddings cached (the
same predictions as running it every batch, each image embedded once across runs, files re-embedded when
they change), fine-tuned, saved and loaded, and the errors."""
import pandas as pd
import pytest
import torch

from framework import Model
from framework.errors import FrameworkError
from embedding_counts import count_embedded_rows
from image_shapes import image_config, shapes_frame
from tiny_vision import build_tiny_vit


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    return build_tiny_vit(tmp_path_factory.mktemp("tiny-vit"))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """90 shape images of 24x24 (the ViT takes 16x16: the encoder resizes), absolute paths."""
    root = tmp_path_factory.mktemp("hf-shapes")
    frame = shapes_frame(root, 90, seed=2, size=24, mode="RGB")
    frame["image"] = [str(root / name) for name in frame["image"]]
    return frame


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMEWORK_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "embeddings"


def config(vit, preprocessing=None, **encoder) -> dict:
    return {**image_config({"type": "huggingface", "base_model": str(vit), **encoder}, preprocessing,
                           epochs=3, learning_rate=0.01),
            "preprocessing": {"cache": False}}


@pytest.mark.parametrize("in_memory", [True, False])
def test_cached_embeddings_predict_as_the_model_run_every_batch(vit, shapes, cache_dir, in_memory):
    preprocessing = {"in_memory": in_memory}
    cached = Model({**config(vit, preprocessing), "seed": 3})
    cached.train(shapes, output_dir=None)
    assert cached.module.input_features["image"].encoder.model is None  # the head alone trains
    assert list(cache_dir.iterdir())
    uncached = Model({**config(vit, preprocessing, cache=False), "seed": 3})
    uncached.train(shapes, output_dir=None)
    assert uncached.module.input_features["image"].encoder.model is not None
    pd.testing.assert_frame_equal(cached.predict(shapes), uncached.predict(shapes), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("in_memory, after_copy", [(True, []), (False, [1])])
def test_each_image_is_embedded_once_across_runs_and_a_changed_one_again(vit, shapes, cache_dir, monkeypatch,
                                                                          tmp_path, in_memory, after_copy):
    """Decoded images are keyed by their pixels; images kept as files by path, size and modification time."""
    from PIL import Image

    computed = count_embedded_rows(monkeypatch)
    preprocessing = {"in_memory": in_memory}
    Model(config(vit, preprocessing)).train(shapes, output_dir=None)
    assert computed == [90]
    Model(config(vit, preprocessing)).train(shapes, output_dir=None)
    assert computed == [90]  # a second run reads every vector from the cache
    changed = tmp_path / "changed.png"
    Image.open(shapes.loc[0, "image"]).save(changed)
    frame = shapes.assign(image=[str(changed), *shapes["image"][1:]])
    Model(config(vit, preprocessing)).train(frame, output_dir=None)
    assert computed == [90, *after_copy]  # the same pixels under another name
    Image.new("RGB", (24, 24), (255, 0, 0)).save(changed)
    Model(config(vit, preprocessing)).train(frame, output_dir=None)
    assert computed == [90, *after_copy, 1]  # the file rewritten in place is embedded again


def test_a_fine_tuned_encoder_trains_its_weights_and_round_trips(vit, shapes, cache_dir, tmp_path):
    model = Model(config(vit, trainable=True))
    model.train(shapes, output_dir=None)
    weights = dict(model.module.input_features["image"].encoder.model.named_parameters())
    assert all(p.requires_grad for p in weights.values())
    from safetensors.torch import load_file

    original = load_file(vit / "model.safetensors")
    moved = [n for n, p in weights.items() if n in original and not torch.equal(p.detach(), original[n])]
    assert moved  # the backbone itself was trained
    assert not cache_dir.exists()  # nothing is cached for an encoder that trains
    model.save(tmp_path / "saved")
    loaded = Model.load(tmp_path / "saved")
    pd.testing.assert_frame_equal(loaded.predict(shapes), model.predict(shapes))


def test_a_frozen_uncached_model_saves_the_head_only_and_loads_the_base_again(vit, shapes, cache_dir, tmp_path):
    from safetensors.torch import load_file

    model = Model(config(vit, cache=False))
    model.train(shapes.head(30), output_dir=None)
    model.save(tmp_path / "saved")
    saved = load_file(tmp_path / "saved" / "weights.safetensors")
    assert not [name for name in saved if ".encoder.model." in name]
    pd.testing.assert_frame_equal(Model.load(tmp_path / "saved").predict(shapes.head(10)),
                                  model.predict(shapes.head(10)))


def test_a_directory_that_is_not_a_vision_model_is_a_clear_error(shapes, tmp_path, cache_dir):
    with pytest.raises(FrameworkError, match="cannot load the huggingface image encoder's base_model"):
        Model(config(tmp_path / "nothing")).train(shapes.head(10), output_dir=None)
