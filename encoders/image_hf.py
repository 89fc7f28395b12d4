"""`huggingface`: a Hugging Face vision backbone (ViT, DeiT, BEiT, DINOv2, ConvNeXt, ResNet, Swin ...) from a
local directory as an image encoder. Frozen by default, with its pooled embeddings computed once and cached on
disk exactly like the text `llm` encoder's (later epochs and runs train only the head); or fine-tuned
(`trainable: true`).

The model sees images the way its own image processor would prepare them, done on the batch on the device:
the feature's uint8 pixels scaled to [0, 1], given three channels (a grey image repeated, alpha left out),
resized to the model's input size and normalised with the mean and std of its preprocessor_config.json.
The feature's own normalization setting does not apply here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from encoders._image_input import Augmentation, ImageInput
from framework.config import fields as f
from framework.errors import FrameworkError
from framework.registry import register_encoder

IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class HuggingFaceImageSchema(f.Schema):
    base_model = f.Str(required=True, doc="a local directory holding a Hugging Face vision model (or a hub name "
                                          "in the local Hugging Face cache)")
    trust_remote_code = f.Bool(False, doc="run the model repository's own Python code (off unless you trust it)")
    pooling = f.Choice(["auto", "pooler", "cls", "mean"], "auto",
                       doc="one vector per image: the model's pooler output, its first (class) token, or the mean "
                           "of its final states; auto: pooler where the model has one, else mean")
    trainable = f.Bool(False, doc="fine-tune the model's weights (false: frozen, in eval mode)")
    cache = f.Bool(True, doc="frozen and without augmentation: compute the embeddings once and cache them on disk")
    augmentation = Augmentation()


def model_input(base_model: str, model_config: Any) -> tuple[tuple[int, int] | None, list[float], list[float]]:
    """(height, width) the model expects (None: any), and its normalisation, from preprocessor_config.json
    where the directory has one, else the model config's image_size and ImageNet statistics."""
    settings: dict[str, Any] = {}
    processor = Path(base_model).expanduser() / "preprocessor_config.json"
    if processor.is_file():
        settings = json.loads(processor.read_text())
    size = settings.get("crop_size") if settings.get("do_center_crop") else settings.get("size")
    if isinstance(size, dict) and "height" in size:
        shape = (int(size["height"]), int(size["width"]))
    elif isinstance(size, dict) and "shortest_edge" in size:
        shape = (int(size["shortest_edge"]),) * 2
    elif isinstance(size, int):
        shape = (size, size)
    else:
        image_size = getattr(model_config, "image_size", None)
        shape = tuple(image_size) if isinstance(image_size, (list, tuple)) else (
            (image_size, image_size) if isinstance(image_size, int) else None)
    mean = settings.get("image_mean", IMAGENET_MEAN) if settings.get("do_normalize", True) else [0.0] * 3
    std = settings.get("image_std", IMAGENET_STD) if settings.get("do_normalize", True) else [1.0] * 3
    return shape, [float(v) for v in mean], [float(v) for v in std]


def feature_size(model_config: Any) -> int:
    for name in ("hidden_size", "embed_dim"):
        value = getattr(model_config, name, None)
        if isinstance(value, int):
            return value
    sizes = getattr(model_config, "hidden_sizes", None)
    if sizes:
        return int(sizes[-1])
    raise FrameworkError(f"the huggingface image encoder cannot tell the width of {type(model_config).__name__}'s "
                         "features (no hidden_size, embed_dim or hidden_sizes): it needs a vision backbone")


def _config(base_model: str, trust_remote_code: bool):
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(base_model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise FrameworkError(f"cannot load the huggingface image encoder's base_model '{base_model}': "
                             f"{str(error).splitlines()[0]}") from None
    if hasattr(model_config, "vision_config") and not hasattr(model_config, "hidden_size"):
        raise FrameworkError(f"'{base_model}' is a {model_config.model_type} model with a vision tower inside; give "
                             "the directory of a vision backbone itself")
    return model_config


def _load(base_model: str, trust_remote_code: bool):
    from transformers import AutoModel

    from encoders.llm import _quiet_head_drop

    model_config = _config(base_model, trust_remote_code)
    with _quiet_head_drop():
        return model_config, AutoModel.from_pretrained(base_model, trust_remote_code=trust_remote_code)


@register_encoder("huggingface", schema=HuggingFaceImageSchema, types=("image",))
class HuggingFaceImageEncoder(nn.Module):
    """uint8 pixels [B, C, H, W] -> the pooled features of a Hugging Face vision model [B, hidden]; or, when
    the pipeline cached the embeddings, the cached vectors [B, hidden] passed on."""

    def __init__(self, num_channels: int, embeddings_cached: bool = False, *, base_model: str,
                 trust_remote_code: bool = False, pooling: str = "auto", trainable: bool = False, cache: bool = True,
                 augmentation: list[dict] = []):  # noqa: B006 (read, never mutated; the schema's default)
        super().__init__()
        self.cached, self.trainable, self.pooling = embeddings_cached, trainable, pooling
        if embeddings_cached:
            model_config, self.model = _config(base_model, trust_remote_code), None
        else:
            # loading draws random numbers (weights initialised, then overwritten): a forked generator keeps
            # the rest of the model's initialisation the same with the embeddings cached or not
            with torch.random.fork_rng(devices=[]):
                model_config, self.model = _load(base_model, trust_remote_code)
            self.model.requires_grad_(trainable)
        self.output_size = feature_size(model_config)
        self.size, mean, std = model_input(base_model, model_config)
        self.input = ImageInput(3, mean, std, augmentation)

    def train(self, mode: bool = True):
        """A frozen model stays in eval mode: no dropout, so its outputs are the cached ones exactly."""
        super().train(mode)
        if self.model is not None and not self.trainable:
            self.model.eval()
        return self

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self.cached:
            return pixels.float()
        x = pixels[:, :3] if pixels.shape[1] >= 3 else pixels.expand(-1, 3, -1, -1)
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x.float(), size=self.size, mode="bilinear", align_corners=False,
                              antialias=True).clamp(0, 255)  # still on the uint8 scale ImageInput reads
        out = self.model(pixel_values=self.input(x))
        pooled = getattr(out, "pooler_output", None)
        if self.pooling in ("auto", "pooler") and pooled is not None:
            return pooled.flatten(1).float()
        if self.pooling == "pooler":
            raise FrameworkError(f"pooling: pooler, but {type(self.model).__name__} has no pooler; use cls or mean")
        states = out.last_hidden_state
        if states.dim() == 4:  # a convolutional backbone: [B, C, h, w]
            return states.float().mean(dim=(2, 3))
        return (states[:, 0] if self.pooling == "cls" else states.mean(dim=1)).float()

    def saved_parameter_names(self) -> set[str] | None:
        """A frozen model's weights come from base_model again: a saved model holds the rest only."""
        if self.model is None or self.trainable:
            return None
        return set()


def cacheable(settings: dict) -> bool:
    """Frozen and unaugmented: the output depends on the image alone, so it can be cached."""
    return settings["cache"] and not settings["trainable"] and not settings["augmentation"]


HuggingFaceImageEncoder.cacheable = staticmethod(cacheable)
