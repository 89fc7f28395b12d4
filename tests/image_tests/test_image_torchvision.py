"""resnet / vit encoders: a training step, weights from a local file, torchvision's layout and outputs."""
import importlib.util

import pytest
import torch
from safetensors.torch import save_file

from encoders._torchvision_arch import resnet, vit
from encoders.image_torchvision import ResNetEncoder, ViTEncoder
from framework.errors import FrameworkError


def torchvision_models():
    """torchvision.models, or a skip: a CUDA torchvision beside a CPU torch cannot import its operators."""
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed")
    try:
        import torchvision.models as models
    except (RuntimeError, OSError, ImportError) as error:
        pytest.skip(f"torchvision does not import with this torch build: {error}")
    return models


def pixels(n: int = 4, channels: int = 3, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_resnet18_trains_a_step():
    torch.manual_seed(0)
    encoder = ResNetEncoder(1, 16, 16, [0.5], [0.25], num_fc_layers=1, output_size=8).train()
    head = torch.nn.Linear(8, 2)
    optimizer = torch.optim.SGD([*encoder.parameters(), *head.parameters()], lr=0.1)
    before = encoder.backbone.conv1.weight.detach().clone()
    loss = torch.nn.functional.cross_entropy(head(encoder(pixels(4, 1, 16))), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and encoder.output_size == 8
    assert not torch.equal(before, encoder.backbone.conv1.weight)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_resnet18_loads_a_torchvision_state_dict_from_a_local_file(tmp_path, suffix):
    torch.manual_seed(1)
    source = resnet("resnet18").eval()
    state = {**source.state_dict(), "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}  # as saved
    path = tmp_path / f"resnet18{suffix}"
    save_file(state, path) if suffix == ".safetensors" else torch.save(state, path)
    torch.manual_seed(2)
    encoder = ResNetEncoder(3, 32, 32, [0.0] * 3, [1.0] * 3, weights_path=str(path), trainable=False).train()
    assert not encoder.backbone.training  # a frozen backbone keeps its batch-norm statistics
    assert not any(p.requires_grad for p in encoder.backbone.parameters())
    torch.testing.assert_close(encoder(pixels()), source(pixels().float() / 255), rtol=0, atol=0)


def test_a_weights_file_of_another_model_is_an_error_naming_what_does_not_fit(tmp_path):
    save_file({"conv1.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "w.safetensors")
    with pytest.raises(FrameworkError, match=r"does not fit torchvision's resnet18 \(missing: .*wrong shape: "
                                             r"conv1.weight \(8, 3, 3, 3\) \(expected \(64, 3, 7, 7\)\)"):
        ResNetEncoder(3, 16, 16, [0.0] * 3, [1.0] * 3, weights_path=str(tmp_path / "w.safetensors"))
    with pytest.raises(FrameworkError, match="is not a file"):
        ResNetEncoder(3, 16, 16, [0.0] * 3, [1.0] * 3, weights_path=str(tmp_path / "absent.pt"))


def test_vit_encodes_a_non_square_grid_and_resizes_pretrained_position_embeddings():
    torch.manual_seed(0)
    encoder = ViTEncoder(4, 32, 48, [0.0] * 4, [1.0] * 4, model_name="vit_b_16")  # alpha dropped
    assert encoder(torch.randint(0, 256, (2, 4, 32, 48), dtype=torch.uint8)).shape == (2, 768)
    pretrained = torch.randn(1, 1 + 14 * 14, 768)  # 224x224 weights
    resized = encoder.backbone.resized_position_embedding(pretrained)
    assert resized.shape == (1, 1 + 2 * 3, 768)
    torch.testing.assert_close(resized[:, 0], pretrained[:, 0])
    with pytest.raises(FrameworkError, match="multiples of 16; the images are 30x32"):
        ViTEncoder(3, 30, 32, [0.0] * 3, [1.0] * 3)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vit_b_32"])
def test_layout_and_outputs_equal_torchvisions(name):
    models = torchvision_models()
    reference = getattr(models, name)().eval()
    ours = (resnet(name) if name.startswith("resnet") else vit(name, 224, 224, 0.0, 0.0)).eval()
    head = ("fc.", "heads.")
    expected = {k: v for k, v in reference.state_dict().items() if not k.startswith(head)}
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in expected.items()}
    ours.load_state_dict(expected)
    reference.fc = reference.heads = torch.nn.Identity()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)
