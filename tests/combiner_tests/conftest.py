"""Small learning tasks for the combiners: a head on the combiner's output, Adam, fresh batches each
step, and the accuracy on fresh rows in eval mode."""
from typing import Callable

import pytest
import torch
from torch import nn

from framework.models.encoded import Encoded, as_encoded

Batch = Callable[[int, torch.Generator], tuple[dict[str, Encoded], torch.Tensor]]


def signs(n: int, generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randint(0, 2, (n, *shape), generator=generator).float() * 2 - 1


def xor_batch(n: int, generator: torch.Generator) -> tuple[dict[str, Encoded], torch.Tensor]:
    """Label: sign(a) == sign(b), the signs in column 0 of inputs a (width 3) and b (width 2) beside
    noise; input c (width 3) is noise only."""
    a, b = signs(n, generator, 1), signs(n, generator, 1)
    encoded = {"a": Encoded(torch.cat([a, 0.1 * torch.randn(n, 2, generator=generator)], dim=1)),
               "b": Encoded(torch.cat([b, 0.1 * torch.randn(n, 1, generator=generator)], dim=1)),
               "c": Encoded(torch.randn(n, 3, generator=generator))}
    return encoded, (a * b > 0).float().squeeze(1)


XOR_SIZES = {"a": 3, "b": 2, "c": 3}


def accuracy_after_training(combiner: nn.Module, batch: Batch, steps: int, lr: float = 1e-2) -> float:
    generator = torch.Generator().manual_seed(0)
    head = nn.Linear(combiner.output_size, 1)
    optimizer = torch.optim.Adam([*combiner.parameters(), *head.parameters()], lr=lr)
    for _ in range(steps):
        encoded, labels = batch(128, generator)
        logits = head(as_encoded(combiner(encoded)).pooled).squeeze(1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        if getattr(combiner, "aux_loss", None) is not None:
            loss = loss + combiner.aux_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    combiner.eval()
    with torch.no_grad():
        encoded, labels = batch(1024, generator)
        predicted = head(as_encoded(combiner(encoded)).pooled).squeeze(1) > 0
    return (predicted == labels.bool()).float().mean().item()


@pytest.fixture
def learn() -> Callable[[nn.Module, Batch, int], float]:
    """`learn(combiner, batch, steps)`: its accuracy on fresh rows after training with a linear head."""
    torch.manual_seed(0)
    return accuracy_after_training


@pytest.fixture
def xor() -> tuple[dict[str, int], Batch]:
    return XOR_SIZES, xor_batch


@pytest.fixture
def config_error() -> Callable[[dict], str]:
    """`config_error(combiner_section)`: the message of the ConfigError a config with it raises."""
    from framework.config.resolve import resolve_config
    from framework.errors import ConfigError

    def message(combiner: dict) -> str:
        with pytest.raises(ConfigError) as error:
            resolve_config({"input_features": [{"name": "x", "type": "number"}],
                            "output_features": [{"name": "y", "type": "binary"}], "combiner": combiner})
        return str(error.value)

    return message
