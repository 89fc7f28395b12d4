"""ECD: input features -> encoders -> combiner -> decoders -> output features."""
from __future__ import annotations

import torch
from torch import nn

from framework.models.build import build
from framework.models.encoded import Encoded, as_encoded
from framework.registry import combiners, decoders, encoders, feature_types, losses


class InputFeature(nn.Module):
    def __init__(self, config: dict, metadata: dict):
        super().__init__()
        kind = feature_types.get(config["type"]).cls
        entry = encoders.get(config["encoder"]["type"], config["type"])
        self.encoder = build(entry, kind.input_context(metadata), config["encoder"])
        self.output_size = self.encoder.output_size

    def forward(self, values: torch.Tensor) -> Encoded:
        return as_encoded(self.encoder(values))


class OutputFeature(nn.Module):
    """Owns the decoder and the loss; turns logits into predictions the feature type defines."""

    def __init__(self, config: dict, metadata: dict, input_size: int):
        super().__init__()
        self.config = config
        self.metadata = metadata
        self.kind = feature_types.get(config["type"]).cls
        context = {"input_size": input_size, **self.kind.output_context(metadata)}
        self.decoder = build(decoders.get(config["decoder"]["type"], config["type"]), context, config["decoder"])
        self.loss_fn = build(losses.get(config["loss"]["type"], config["type"]), context, config["loss"])

    @property
    def per_token(self) -> bool:
        """Whether logits are [batch, tokens, classes] (text and sequence outputs)."""
        return getattr(self.kind, "per_token", False)

    @property
    def generates(self) -> bool:
        """Whether the decoder predicts by decoding step by step (not from teacher-forced logits)."""
        return getattr(self.decoder, "teacher_forced", False)

    def forward(self, combined: Encoded, target: torch.Tensor | None = None) -> torch.Tensor:
        """Logits; a generator given the target is teacher-forced, without it it decodes."""
        hidden = combined if getattr(self.decoder, "input_kind", "pooled") == "encoded" else combined.pooled
        return self.decoder(hidden, target) if self.generates else self.decoder(hidden)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(logits, target)

    def predict(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.kind.predict(logits, self.metadata, self.config)


class ECD(nn.Module):
    def __init__(self, config: dict, metadata: dict[str, dict]):
        super().__init__()
        self.input_features = nn.ModuleDict(
            {f["name"]: InputFeature(f, metadata[f["name"]]) for f in config["input_features"]})
        sizes = {name: feature.output_size for name, feature in self.input_features.items()}
        self.combiner = build(combiners.get(config["combiner"]["type"]), {"input_sizes": sizes}, config["combiner"])
        self.output_features = nn.ModuleDict(
            {f["name"]: OutputFeature(f, metadata[f["name"]], self.combiner.output_size)
             for f in config["output_features"]})
        self.weights = {f["name"]: f["weight"] for f in config["output_features"]}

    @property
    def input_names(self) -> list[str]:
        return list(self.input_features)

    def combine(self, batch: dict[str, torch.Tensor]) -> Encoded:
        encoded = {name: feature(batch[name]) for name, feature in self.input_features.items()}
        return as_encoded(self.combiner(encoded))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Logits of every output; outputs whose targets are in the batch are teacher-forced."""
        combined = self.combine(batch)
        return {name: feature(combined, batch.get(name)) for name, feature in self.output_features.items()}

    def losses(self, logits: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """The weighted total loss and each output's own loss."""
        each = {name: feature.loss(logits[name], batch[name]) for name, feature in self.output_features.items()}
        # no `0 +` start and no `1.0 *`: each would be one more autograd node on every step
        weighted = [loss if self.weights[name] == 1.0 else self.weights[name] * loss for name, loss in each.items()]
        total = weighted[0]
        for loss in weighted[1:]:
            total = total + loss
        auxiliary = getattr(self.combiner, "aux_loss", None)  # e.g. TabNet's sparsity regularisation
        if auxiliary is not None:
            total = total + auxiliary
        return total, each

    def saved_state(self) -> dict[str, torch.Tensor]:
        """Every tensor, except those a module declares it gets back from elsewhere (a frozen pretrained
        encoder's weights: they load from its base model)."""
        state = self.state_dict()
        for prefix, module in self.named_modules():
            keep = module.saved_parameter_names() if hasattr(module, "saved_parameter_names") else None
            if keep is None:
                continue
            for key in [k for k in state if k.startswith(prefix + ".") and k[len(prefix) + 1:] not in keep]:
                del state[key]
        return state

    def load_saved_state(self, tensors: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
        expected = set(self.saved_state())
        self.load_state_dict({k: v for k, v in tensors.items() if k in expected}, strict=False)
        return sorted(expected - set(tensors)), sorted(set(tensors) - expected)

    def evaluate_dataset(self, dataset, batch_size: int, device: torch.device, precision: str = "fp32") -> dict:
        """{output: {metric: value}, "combined": {"loss": value}} over a whole split."""
        from framework.training.evaluation import evaluate

        return evaluate(self, dataset, batch_size, device, precision)
