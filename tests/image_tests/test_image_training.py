"""Image models end to end: shapes learned by stacked_cnn, a mixed model's save / load round trip, and
the lazily decoded path giving what the in-memory one gives."""
import numpy as np
import pandas as pd
import pytest
import torch

from framework import Model
from framework.data.dataset import ArrayDataset
from framework.data.image_loader import LazyImages
from framework.features.image import ImageFeature, ImagePreprocessing
from framework.config.fields import defaults_of

SMALL_CNN = {"type": "stacked_cnn", "num_filters": 8, "num_conv_layers": 2, "output_size": 32}


@pytest.fixture(scope="module")
def trained_shapes(shapes_csv):
    from image_shapes import image_config

    train, _ = shapes_csv
    model = Model(image_config(SMALL_CNN, epochs=10, early_stop=0))
    model.train(str(train), output_dir=None)
    return model


def test_stacked_cnn_tells_circles_squares_and_triangles_apart(trained_shapes, shapes_csv):
    _, test = shapes_csv
    accuracy = trained_shapes.evaluate(str(test))["shape"]["accuracy"]
    assert accuracy >= 0.8  # chance is 1/3; this run reaches 1.0, the floor leaves room for other seeds


def test_relative_paths_are_read_from_the_dataset_files_directory(trained_shapes, shapes_csv, tmp_path,
                                                                   monkeypatch):
    _, test = shapes_csv
    monkeypatch.chdir(tmp_path)  # nothing relative to the working directory
    predictions = trained_shapes.predict(str(test))
    assert (predictions["shape_predictions"] == pd.read_csv(test)["shape"]).mean() >= 0.8


def test_image_number_and_category_model_saves_loads_and_predicts_identically(make_shapes, make_image_config,
                                                                             tmp_path):
    frame = make_shapes(tmp_path / "data", 90, seed=3)
    frame["image"] = [str(tmp_path / "data" / name) for name in frame["image"]]  # absolute paths
    frame["colour"] = np.where(frame.index % 2 == 0, "red", "blue")
    inputs = ({"name": "noise", "type": "number"}, {"name": "colour", "type": "category"})
    config = make_image_config(SMALL_CNN, {"normalization": "standardize"}, inputs, epochs=2)
    model = Model(config)
    model.train(frame, output_dir=None)
    expected = model.predict(frame)
    model.save(tmp_path / "saved")
    loaded = Model.load(tmp_path / "saved")
    pd.testing.assert_frame_equal(loaded.predict(frame), expected)
    assert loaded.metadata["image"]["pixel_mean"] == model.metadata["image"]["pixel_mean"]


def test_lazy_path_predicts_what_the_in_memory_path_predicts(make_shapes, make_image_config, tmp_path):
    frame = make_shapes(tmp_path / "data", 60, seed=4)
    frame["image"] = [str(tmp_path / "data" / name) for name in frame["image"]]
    results = []
    for in_memory in (True, False):
        torch.manual_seed(0)
        model = Model({**make_image_config(SMALL_CNN, {"in_memory": in_memory}, epochs=2), "seed": 7})
        model.train(frame, output_dir=None)
        results.append(model.predict(frame))
    pd.testing.assert_frame_equal(results[0], results[1])


def test_lazy_column_batches_equal_the_decoded_arrays_in_any_order(make_shapes, tmp_path):
    frame = make_shapes(tmp_path, 100, seed=5)
    column = pd.Series([str(tmp_path / name) for name in frame["image"]])
    settings = defaults_of(ImagePreprocessing)
    metadata = ImageFeature.fit(column, settings, "image")
    in_memory = ImageFeature.transform(column, settings, metadata, "image")
    paths = ImageFeature.transform(column, {**settings, "in_memory": False}, metadata, "image")
    assert in_memory.dtype == np.uint8 and in_memory.shape == (100, 1, 16, 16)
    lazy = ImageFeature.batch_column(paths, metadata, "image")
    assert isinstance(lazy, LazyImages) and lazy.nbytes == in_memory.nbytes
    order = np.random.default_rng(0).permutation(100)
    eager = list(ArrayDataset({"image": in_memory}).batches(24, order=order))
    deferred = list(ArrayDataset({"image": lazy}).batches(24, order=order))
    assert len(eager) == len(deferred) == 5
    for a, b in zip(eager, deferred):
        torch.testing.assert_close(a["image"], b["image"], rtol=0, atol=0)
    lazy.close()


def test_auto_keeps_paths_when_the_decoded_split_exceeds_the_budget(make_shapes, tmp_path):
    frame = make_shapes(tmp_path, 10, seed=6)
    column = pd.Series([str(tmp_path / name) for name in frame["image"]])
    settings = defaults_of(ImagePreprocessing)
    metadata = ImageFeature.fit(column, settings, "image")
    assert ImageFeature.transform(column, settings, metadata, "image").dtype == np.uint8
    over = ImageFeature.transform(column, {**settings, "max_in_memory_mb": 0}, metadata, "image")
    assert over.dtype == object and over[0] == str(tmp_path / frame["image"][0])
