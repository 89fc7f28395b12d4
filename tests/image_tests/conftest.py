"""Fixtures of the image tests (the drawing helpers are in image_shapes.py, importable by name)."""
import pytest

from image_shapes import draw, image_config, shapes_frame  # noqa: F401 (used by the fixtures)


@pytest.fixture
def make_shapes():
    return shapes_frame


@pytest.fixture(scope="module")
def shapes_csv(tmp_path_factory):
    """A CSV of 240 shape images beside it (relative paths), and one of 60 more for testing."""
    root = tmp_path_factory.mktemp("shapes")
    shapes_frame(root / "images", 240, seed=0).assign(image=lambda f: "images/" + f["image"]).to_csv(
        root / "train.csv", index=False)
    shapes_frame(root / "images", 60, seed=1).assign(image=lambda f: "images/" + f["image"]).to_csv(
        root / "test.csv", index=False)
    return root / "train.csv", root / "test.csv"


@pytest.fixture
def make_image_config():
    return image_config
