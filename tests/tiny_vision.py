"""A random-weight Hugging Face ViT saved like a hub checkpoint (with its image processor's settings), for
the huggingface image encoder's tests: loaded by path through the real loading code, nothing downloaded."""
from pathlib import Path


def build_tiny_vit(directory: Path, image_size: int = 16, hidden: int = 32) -> Path:
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(image_size=image_size, patch_size=4, num_channels=3, hidden_size=hidden,
                       num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * hidden)
    ViTModel(config).save_pretrained(directory, safe_serialization=True)
    ViTImageProcessor(size={"height": image_size, "width": image_size}, image_mean=[0.5] * 3,
                      image_std=[0.5] * 3).save_pretrained(directory)
    return directory
