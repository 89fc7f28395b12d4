"""`resnet` and `vit`: torchvision's architectures as image encoders, pooled to one vector per image.

Pretrained weights come only from a local file (`weights_path`: a torchvision state dict saved with
torch.save or safetensors; its classifier is ignored). The architectures take three channels: a
grayscale image is repeated into them (what summing pretrained RGB kernels would compute) and an
alpha channel is left out. Pretrained models expect the statistics they were trained with, so pair
them with `preprocessing.normalization: standardize`. A frozen backbone (`trainable: false`) also
keeps its batch-norm statistics.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from encoders._image_input import Augmentation, ImageInput
from encoders._torchvision_arch import HEAD_PREFIXES, RESNETS, VITS, resnet, vit
from framework.config import fields as f
from framework.errors import FrameworkError
from framework.models.fc_stack import FCStack, FCStackSchema
from framework.registry import register_encoder


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Tensors of a local weights file: safetensors, or torch.save'd tensors only (weights_only)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FrameworkError(f"image encoder weights_path '{path}' is not a file")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file))
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle, zip and safetensors errors all mean: not a weights file
        raise FrameworkError(f"image encoder weights_path '{path}' could not be read as a state dict: {error}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # a training checkpoint
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise FrameworkError(f"image encoder weights_path '{path}' holds a {type(state).__name__}, not a state dict")
    return {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}


def load_backbone(backbone: nn.Module, path: str, model_name: str) -> None:
    state = read_state_dict(path)
    if "encoder.pos_embedding" in state and hasattr(backbone, "resized_position_embedding"):
        state["encoder.pos_embedding"] = backbone.resized_position_embedding(state["encoder.pos_embedding"])
    expected = backbone.state_dict()
    wrong = [f"{k} {tuple(v.shape)} (expected {tuple(expected[k].shape)})" for k, v in state.items()
             if k in expected and v.shape != expected[k].shape]
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if wrong or missing or unexpected:
        parts = [f"{label}: {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise FrameworkError(f"image encoder weights_path '{path}' does not fit torchvision's {model_name} "
                             f"({'; '.join(parts)})")
    backbone.load_state_dict(state)


class _Backbone(nn.Module):
    """What both encoders share: input scaling and augmentation, three channels, a backbone, an fc stack."""

    def __init__(self, backbone: nn.Module, model_name: str, num_channels: int, pixel_mean: list[float],
                 pixel_std: list[float], *, augmentation: list[dict], weights_path: str | None, trainable: bool,
                 fc: dict):
        super().__init__()
        self.input = ImageInput(num_channels, pixel_mean, pixel_std, augmentation)
        self.backbone = backbone
        if weights_path is not None:
            load_backbone(backbone, weights_path, model_name)
        self.trainable = trainable
        backbone.requires_grad_(trainable)
        self.fc = FCStack(backbone.output_size, **fc)
        self.output_size = self.fc.output_size

    def train(self, mode: bool = True) -> "_Backbone":
        super().train(mode)
        if not self.trainable:
            self.backbone.eval()
        return self

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.input(pixels)
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
        return self.fc(self.backbone(x))


class TorchvisionSchema(FCStackSchema):
    augmentation = Augmentation()
    weights_path = f.Str(None, doc="a local file of the model's torchvision weights (.safetensors, .pt, .pth); "
                                   "null: randomly initialised")
    trainable = f.Bool(True, doc="false: the backbone is frozen (its weights and batch-norm statistics)")
    num_fc_layers = f.Int(0, min=0, doc="fully connected layers after the pooled backbone output")
    output_size = f.Int(256, min=1, doc="width of each fully connected layer")


class ResNetSchema(TorchvisionSchema):
    model_name = f.Choice(list(RESNETS), "resnet18", doc="the torchvision ResNet")


@register_encoder("resnet", schema=ResNetSchema, types=("image",))
class ResNetEncoder(_Backbone):
    """A torchvision ResNet to its average pool ([B, 512] for resnet18/34, [B, 2048] deeper), then an fc stack."""

    def __init__(self, num_channels: int, height: int, width: int, pixel_mean: list[float], pixel_std: list[float],
                 *, num_fc_layers: int = 0, output_size: int = 256, activation: str = "relu",
                 norm: str | None = None, dropout: float = 0.0, residual: bool = False,
                 augmentation: list[dict] = [],  # noqa: B006 (read, never mutated; the schema's default)
                 weights_path: str | None = None, trainable: bool = True, model_name: str = "resnet18"):
        super().__init__(resnet(model_name), model_name, num_channels, pixel_mean, pixel_std,
                         augmentation=augmentation, weights_path=weights_path, trainable=trainable,
                         fc={"num_fc_layers": num_fc_layers, "output_size": output_size, "activation": activation,
                             "norm": norm, "dropout": dropout, "residual": residual})


class ViTSchema(TorchvisionSchema):
    model_name = f.Choice(list(VITS), "vit_b_16", doc="the torchvision vision transformer")
    attention_dropout = f.Float(0.0, min=0.0, max=1.0, max_inclusive=False, doc="dropout of the attention weights")


@register_encoder("vit", schema=ViTSchema, types=("image",))
class ViTEncoder(_Backbone):
    """A torchvision vision transformer's class-token state ([B, 768] for vit_b_*), then an fc stack.

    Height and width must be multiples of the patch size (16 for vit_b_16): set preprocessing.height/width.
    """

    def __init__(self, num_channels: int, height: int, width: int, pixel_mean: list[float], pixel_std: list[float],
                 *, num_fc_layers: int = 0, output_size: int = 256, activation: str = "relu",
                 norm: str | None = None, dropout: float = 0.0, residual: bool = False,
                 augmentation: list[dict] = [],  # noqa: B006 (read, never mutated; the schema's default)
                 weights_path: str | None = None, trainable: bool = True, model_name: str = "vit_b_16",
                 attention_dropout: float = 0.0):
        patch = VITS[model_name][0]
        if height % patch or width % patch:
            raise FrameworkError(f"the vit encoder {model_name} needs images whose height and width are multiples of "
                                 f"{patch}; the images are {height}x{width}: set preprocessing.height and width")
        super().__init__(vit(model_name, height, width, dropout, attention_dropout), model_name, num_channels,
                         pixel_mean, pixel_std, augmentation=augmentation, weights_path=weights_path,
                         trainable=trainable,
                         fc={"num_fc_layers": num_fc_layers, "output_size": output_size, "activation": activation,
                             "norm": norm, "dropout": dropout, "residual": residual})
