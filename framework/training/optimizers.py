"""Optimizers with their settings; the learning rate and weight decay come from the trainer."""
from __future__ import annotations

import torch
from marshmallow import fields

from framework.config import fields as f
from framework.registry import optimizers, register_optimizer


class AdamSchema(f.Schema):
    betas = fields.Tuple((fields.Float(), fields.Float()), load_default=(0.9, 0.999), metadata={"doc": "moment decay rates"})
    eps = f.Float(1e-8, min=0.0, min_inclusive=False, doc="denominator term for numerical stability")
    amsgrad = f.Bool(False, doc="use the AMSGrad variant")


class SGDSchema(f.Schema):
    momentum = f.Float(0.0, min=0.0, doc="momentum factor")
    dampening = f.Float(0.0, min=0.0, doc="dampening for momentum")
    nesterov = f.Bool(False, doc="Nesterov momentum (needs momentum > 0)")


class RMSpropSchema(f.Schema):
    alpha = f.Float(0.99, min=0.0, max=1.0, doc="smoothing constant")
    eps = f.Float(1e-8, min=0.0, min_inclusive=False, doc="denominator term for numerical stability")
    momentum = f.Float(0.0, min=0.0, doc="momentum factor")
    centered = f.Bool(False, doc="normalise by the estimated variance of the gradient")


class AdagradSchema(f.Schema):
    lr_decay = f.Float(0.0, min=0.0, doc="learning-rate decay")
    eps = f.Float(1e-10, min=0.0, min_inclusive=False, doc="denominator term for numerical stability")
    initial_accumulator_value = f.Float(0.0, min=0.0, doc="starting value of the accumulators")


register_optimizer("adam", schema=AdamSchema)(torch.optim.Adam)
register_optimizer("adamw", schema=AdamSchema)(torch.optim.AdamW)
register_optimizer("sgd", schema=SGDSchema)(torch.optim.SGD)
register_optimizer("rmsprop", schema=RMSpropSchema)(torch.optim.RMSprop)
register_optimizer("adagrad", schema=AdagradSchema)(torch.optim.Adagrad)


def build_optimizer(model: torch.nn.Module, settings: dict, learning_rate: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    """The optimizer over the model's trainable parameters, or over the groups the model defines
    (`model.parameter_groups`, e.g. LoRA+); a group's `lr_scale` multiplies the scheduled rate."""
    options = {key: value for key, value in settings.items() if key != "type"}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    optimizer_cls = optimizers.get(settings["type"]).cls
    if hasattr(model, "parameter_groups"):
        return model.parameter_groups(optimizer_cls, learning_rate, weight_decay, options)
    trainable = [p for p in model.parameters() if p.requires_grad]
    return optimizer_cls(trainable, lr=learning_rate, weight_decay=weight_decay, **options)
