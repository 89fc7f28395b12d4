"""What every image encoder does first: uint8 pixels -> floats, training-only augmentation, scaling.

Augmentation runs here, on the batch on the device, so the preprocessed (cached) pixels never change
with it and evaluation never sees it. Each image of a batch draws its own random parameters, in one
vectorized step per operation: torchvision.transforms.v2 applied to a batch tensor would draw one set
for the whole batch (every image flipped or none), and a v2 call per image is a Python loop per row.
The colour operations are torchvision's own formulas (adjust_brightness / adjust_contrast on float
images), the geometric ones one `grid_sample` each with zero fill.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import marshmallow
import torch
import torch.nn.functional as F
from marshmallow import fields
from torch import nn

from framework.config import fields as f
from framework.config.problems import did_you_mean


class FlipSchema(f.Schema):
    p = f.Float(0.5, min=0.0, max=1.0, doc="probability that an image is flipped")


class RotateSchema(f.Schema):
    degree = f.Float(15.0, min=0.0, max=180.0, doc="each image turns by an angle drawn from [-degree, degree]")


class CropSchema(f.Schema):
    min_scale = f.Float(0.8, min=0.0, max=1.0, min_inclusive=False,
                        doc="a window of [min_scale, 1] of the image's area, placed at random, is resized back "
                            "to the full size")


class FactorSchema(f.Schema):
    min = f.Float(0.8, min=0.0, doc="the smallest factor")
    max = f.Float(1.2, min=0.0, doc="the largest factor (1 leaves the image as it is)")

    @marshmallow.validates_schema
    def _ordered(self, data: dict, **kwargs: Any) -> None:
        if data["min"] > data["max"]:
            raise marshmallow.ValidationError(f"must be <= max ({data['max']}), got {data['min']}", "min")


def _uniform(batch: int, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
    return torch.empty(batch, device=like.device, dtype=like.dtype).uniform_(low, high)


def _per_image(values: torch.Tensor) -> torch.Tensor:
    return values.view(-1, 1, 1, 1)


def _colour(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(colour channels, alpha channel or an empty tensor): brightness and contrast leave alpha alone."""
    split = 3 if x.shape[1] >= 3 else 1
    return x[:, :split], x[:, split:]


def _horizontal_flip(x: torch.Tensor, p: float) -> torch.Tensor:
    return torch.where(_per_image(torch.rand(len(x), device=x.device) < p), x.flip(-1), x)


def _vertical_flip(x: torch.Tensor, p: float) -> torch.Tensor:
    return torch.where(_per_image(torch.rand(len(x), device=x.device) < p), x.flip(-2), x)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _rotate(x: torch.Tensor, degree: float) -> torch.Tensor:
    angle = _uniform(len(x), -degree, degree, x) * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    aspect = x.shape[-2] / x.shape[-1]  # a turn in pixels, written in the grid's [-1, 1] coordinates
    zero = torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin * aspect, zero], -1), torch.stack([sin / aspect, cos, zero], -1)], 1)
    return _affine(x, theta)


def _crop(x: torch.Tensor, min_scale: float) -> torch.Tensor:
    side = torch.sqrt(_uniform(len(x), min_scale, 1.0, x))
    reach = 1.0 - side  # how far the window's centre may move and stay inside the image
    shift_x = (torch.rand_like(side) * 2 - 1) * reach
    shift_y = (torch.rand_like(side) * 2 - 1) * reach
    zero = torch.zeros_like(side)
    theta = torch.stack([torch.stack([side, zero, shift_x], -1), torch.stack([zero, side, shift_y], -1)], 1)
    return _affine(x, theta)


def brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's adjust_brightness per image: a blend with black, clamped to [0, 1]."""
    colour, alpha = _colour(x)
    return torch.cat([(colour * _per_image(factor)).clamp(0.0, 1.0), alpha], 1)


def contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision's adjust_contrast per image: a blend with the image's mean gray level, clamped."""
    colour, alpha = _colour(x)
    if colour.shape[1] == 3:
        weights = torch.tensor([0.2989, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        gray = (colour * weights).sum(1, keepdim=True)
    else:
        gray = colour
    mean = gray.mean(dim=(-3, -2, -1), keepdim=True)
    factor = _per_image(factor)
    return torch.cat([(factor * colour + (1 - factor) * mean).clamp(0.0, 1.0), alpha], 1)


def _random_brightness(x: torch.Tensor, min: float, max: float) -> torch.Tensor:  # noqa: A002 (the config's names)
    return brightness(x, _uniform(len(x), min, max, x))


def _random_contrast(x: torch.Tensor, min: float, max: float) -> torch.Tensor:  # noqa: A002
    return contrast(x, _uniform(len(x), min, max, x))


# name -> (settings schema, the operation on a float batch in [0, 1] given those settings)
AUGMENTATIONS: dict[str, tuple[type[f.Schema], Callable[..., torch.Tensor]]] = {
    "random_horizontal_flip": (FlipSchema, _horizontal_flip),
    "random_vertical_flip": (FlipSchema, _vertical_flip),
    "random_rotate": (RotateSchema, _rotate),
    "random_crop": (CropSchema, _crop),
    "random_brightness": (FactorSchema, _random_brightness),
    "random_contrast": (FactorSchema, _random_contrast),
}


class AugmentationList(fields.Field):
    """A list of {type: name, ...its settings}, each checked against its operation's schema."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> list[dict]:
        if not isinstance(value, list):
            raise marshmallow.ValidationError("must be a list of {type: ..., ...settings}")
        steps, errors = [], {}
        for i, item in enumerate(value):
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                errors[i] = ["must be a mapping with a 'type' (one of: " + ", ".join(AUGMENTATIONS) + ")"]
                continue
            if item["type"] not in AUGMENTATIONS:
                errors[i] = {"type": [f"unknown augmentation '{item['type']}'; {did_you_mean(item['type'], AUGMENTATIONS)}"]}
                continue
            try:
                steps.append({"type": item["type"],
                              **AUGMENTATIONS[item["type"]][0]().load({k: v for k, v in item.items() if k != "type"})})
            except marshmallow.ValidationError as error:
                errors[i] = error.messages
        if errors:
            raise marshmallow.ValidationError(errors)
        return steps


def Augmentation() -> fields.Field:
    return AugmentationList(load_default=[], metadata={"doc": "operations applied, in order, to each training "
                                                              "batch (never in evaluation or prediction): " +
                                                              ", ".join(AUGMENTATIONS)})


class ImageInputSchema(f.Schema):
    augmentation = Augmentation()


class ImageInput(nn.Module):
    """uint8 [B, C, H, W] -> float [B, C, H, W]: augmented when training, then (x / 255 - mean) / std."""

    def __init__(self, num_channels: int, pixel_mean: list[float], pixel_std: list[float], augmentation: list[dict]):
        super().__init__()
        # not saved: they come from the training set metadata, like a vocabulary
        self.register_buffer("mean", torch.tensor(pixel_mean, dtype=torch.float32).view(1, num_channels, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(pixel_std, dtype=torch.float32).view(1, num_channels, 1, 1),
                             persistent=False)
        # settings loaded again so that a step built by hand gets its defaults (resolved ones load unchanged)
        self.steps = [(AUGMENTATIONS[step["type"]][1],
                       AUGMENTATIONS[step["type"]][0]().load({k: v for k, v in step.items() if k != "type"}))
                      for step in augmentation]

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        for operation, settings in self.steps:
            x = operation(x, **settings)
        return x

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float() / 255.0
        if self.training and self.steps:
            x = self.augment(x)
        return (x - self.mean) / self.std
