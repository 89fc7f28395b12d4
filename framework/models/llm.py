"""The LLM as the trainer sees it: batches in, a loss out, and only the trained tensors saved.

It wraps a transformers causal LM (with its peft adapter when there is one) behind the same small
interface as ECD: `input_names`, `output_features`, `forward(batch)`, `losses`, `evaluate_dataset`,
`saved_state` / `load_saved_state`, `parameter_groups` and `after_optimizer_step`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

IGNORE = -100
TEACHER_FORCED = ("loss", "perplexity", "token_accuracy")


@dataclass
class LLMOutput:
    """The response feature: its resolved config (name, column, type, metrics)."""

    config: dict


class NEFTune:
    """Uniform noise on the input embeddings while training (Jain et al. 2023): alpha / sqrt(length * width).

    Our own forward hook rather than transformers' (which moved in v5): it reads the embedding module's
    training flag, so evaluation and generation see clean embeddings, and a hook is never part of a
    state dict, so nothing of it is saved with the adapter."""

    def __init__(self, model: nn.Module, alpha: float):
        self.alpha = alpha
        self.handle = model.get_input_embeddings().register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        if not module.training:
            return output
        scale = self.alpha / (output.shape[1] * output.shape[2]) ** 0.5
        return output + torch.zeros_like(output).uniform_(-scale, scale)

    def remove(self) -> None:
        self.handle.remove()


class LLM(nn.Module):
    def __init__(self, config: dict, model: nn.Module, adapter: dict):
        super().__init__()
        self.model = model
        output = config["output_features"][0]
        self.output_name = output["name"]
        self.output_features = {self.output_name: LLMOutput(output)}
        self.weights = {self.output_name: 1.0}
        self.packed = config["trainer"]["packing"]
        self.adapter = adapter
        alpha = config["trainer"]["neftune_noise_alpha"]
        self.neftune = NEFTune(model, alpha) if alpha else None

    @property
    def input_names(self) -> list[str]:
        return ["input_ids", "position_ids" if self.packed else "attention_mask"]

    @property
    def quantized(self) -> bool:
        return bool(getattr(self.base_model, "is_loaded_in_4bit", False) or
                    getattr(self.base_model, "is_loaded_in_8bit", False))

    @property
    def base_model(self) -> nn.Module:
        """The transformers model under the adapter."""
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def to(self, *args, **kwargs):
        if self.quantized:  # placed on its device while loading; bitsandbytes weights are not moved
            return self
        return super().to(*args, **kwargs)

    def forward(self, batch: dict[str, torch.Tensor], labels: bool = True):
        ids = batch["input_ids"]
        # no KV cache: with one, transformers skips the packed-sequence detection below
        kwargs = {"input_ids": ids, "use_cache": False}
        if "attention_mask" in batch:  # one example per row, padded
            kwargs["attention_mask"] = batch["attention_mask"]
        else:  # packed rows carry no mask: position_ids restarting at 0 mark where each example begins
            kwargs["position_ids"] = batch["position_ids"]
        if labels:
            kwargs["labels"] = batch[self.output_name]
        return self.model(**kwargs)

    def losses(self, outputs, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return outputs.loss, {self.output_name: outputs.loss}

    @torch.inference_mode()
    def evaluate_dataset(self, dataset, batch_size: int, device: torch.device, precision: str = "fp32") -> dict:
        """Teacher-forced loss, perplexity and token accuracy over the response tokens (exact token-weighted
        means over the split); the generated-text metrics come from `framework.llm.evaluation`."""
        from framework.training.device import autocast

        self.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        tokens = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.float64, device=device)
        names = self.input_names + [self.output_name]
        for batch in dataset.batches(batch_size, names=names, device=device):
            with autocast(precision, device):
                logits = self(batch, labels=False).logits
            labels = batch[self.output_name][:, 1:]
            logits = logits[:, -batch["input_ids"].shape[1]:-1].float()  # virtual prompt tokens dropped
            mask = labels != IGNORE
            loss_sum += nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE,
                                                    reduction="sum").double()
            tokens += mask.sum()
            correct += ((logits.argmax(-1) == labels) & mask).sum()
        loss = (loss_sum / tokens.clamp_min(1)).item()
        values = {"loss": loss, "perplexity": float(torch.exp(torch.tensor(loss))),
                  "token_accuracy": (correct / tokens.clamp_min(1)).item()}
        wanted = self.output_features[self.output_name].config["metrics"]
        return {self.output_name: {k: v for k, v in values.items() if k in wanted}, "combined": {"loss": loss}}

    # -- what is trained, saved and stepped -------------------------------------------------------
    def trained_parameters(self) -> dict[str, nn.Parameter]:
        return {name: p for name, p in self.named_parameters() if p.requires_grad}

    def saved_state(self) -> dict[str, torch.Tensor]:
        """The trained tensors only: the adapter's, or every weight in a full fine-tune."""
        return {name: p.detach() for name, p in self.trained_parameters().items()}

    def load_saved_state(self, tensors: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
        own = self.trained_parameters()
        missing = sorted(set(own) - set(tensors))
        unexpected = sorted(set(tensors) - set(own))
        with torch.no_grad():
            for name, value in tensors.items():
                if name in own:
                    own[name].copy_(value.to(own[name].device, own[name].dtype))
        return missing, unexpected

    def parameter_groups(self, optimizer_cls, learning_rate: float, weight_decay: float, options: dict):
        """The optimizer over the trained tensors. LoRA+ (peft's grouping) puts the B matrices at
        loraplus_lr_ratio x the rate and adapted embeddings at loraplus_lr_embedding; each group's `lr_scale`
        keeps that ratio to the rate the trainer's schedule sets at every step."""
        if self.adapter["type"] == "lora+":
            from peft.optimizers import create_loraplus_optimizer

            # peft gives its groups loraplus_weight_decay (default 0), not the optimizer's weight_decay
            optimizer = create_loraplus_optimizer(self.model, optimizer_cls, lr=learning_rate,
                                                  loraplus_lr_ratio=self.adapter["loraplus_lr_ratio"],
                                                  loraplus_lr_embedding=self.adapter["loraplus_lr_embedding"],
                                                  loraplus_weight_decay=weight_decay, weight_decay=weight_decay,
                                                  **options)
            optimizer.param_groups[:] = [group for group in optimizer.param_groups if group["params"]]
            for group in optimizer.param_groups:
                group["lr_scale"] = group["lr"] / learning_rate
            return optimizer
        return optimizer_cls(list(self.trained_parameters().values()), lr=learning_rate, weight_decay=weight_decay,
                             **options)

    def after_optimizer_step(self, step: int) -> None:
        """AdaLoRA scores its ranks from this step's gradients and masks the least important ones, down to
        its budget for the step (`step` counts from 0 up to the total_step its config holds)."""
        if self.adapter["type"] == "adalora":
            self.model.base_model.update_and_allocate(step)
