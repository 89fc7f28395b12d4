"""Optimizers with their settings; the learning rate and weight decay come from the trainer."""
from __future__ import annotations

import inspect
import warnings

import torch
from marshmallow import fields

from framework.config import fields as f
from framework.errors import ConfigError, Problem
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


MIN_8BIT_DOC = "tensors with fewer elements keep 32-bit state (8-bit state saves little on them and costs accuracy)"


class BnbAdamSchema(f.Schema):
    betas = fields.Tuple((fields.Float(), fields.Float()), load_default=(0.9, 0.999),
                         metadata={"doc": "moment decay rates"})
    eps = f.Float(1e-8, min=0.0, min_inclusive=False, doc="denominator term for numerical stability")


class Bnb8bitAdamSchema(BnbAdamSchema):
    min_8bit_size = f.Int(4096, min=1, doc=MIN_8BIT_DOC)


class Bnb8bitLionSchema(f.Schema):
    betas = fields.Tuple((fields.Float(), fields.Float()), load_default=(0.9, 0.99),
                         metadata={"doc": "update and momentum interpolation rates"})
    min_8bit_size = f.Int(4096, min=1, doc=MIN_8BIT_DOC)


class LazyOptimizer:
    """An optimizer class from an optional library, imported on first use: `import framework` and every
    run that does not ask for it never load bitsandbytes (nor its native library)."""

    def __init__(self, name: str, module: str, attribute: str):
        self.name, self.module, self.attribute = name, module, attribute
        self.__name__ = self.__qualname__ = attribute  # peft's LoRA+ recognises bitsandbytes classes by name

    def load(self) -> type:
        import importlib

        try:
            return getattr(importlib.import_module(self.module), self.attribute)
        except (ImportError, RuntimeError, OSError) as error:
            first = str(error).splitlines()[0] if str(error) else type(error).__name__
            library = self.module.split(".")[0]
            raise ConfigError([Problem("trainer.optimizer.type", f"'{self.name}' needs {library}, which cannot be "
                                                                 f"imported here ({first}); install it (pip install "
                                                                 f"{library}) or use adamw")]) from None

    @property
    def __signature__(self):
        return inspect.signature(self.load())

    def __call__(self, params, **options) -> torch.optim.Optimizer:
        return self.load()(params, **options)


# (name, bitsandbytes.optim class, schema): 8-bit state quarters the optimizer's memory; paged state moves
# to CPU memory under GPU memory pressure instead of failing
BITSANDBYTES = (
    ("adamw_8bit", "AdamW8bit", Bnb8bitAdamSchema),
    ("paged_adamw_8bit", "PagedAdamW8bit", Bnb8bitAdamSchema),
    ("paged_adamw_32bit", "PagedAdamW32bit", BnbAdamSchema),
    ("paged_adamw", "PagedAdamW", BnbAdamSchema),
    ("lion_8bit", "Lion8bit", Bnb8bitLionSchema),
    ("paged_lion_8bit", "PagedLion8bit", Bnb8bitLionSchema),
)
for _name, _attribute, _schema in BITSANDBYTES:
    register_optimizer(_name, schema=_schema, requires="bitsandbytes")(
        LazyOptimizer(_name, "bitsandbytes.optim", _attribute))


def _warn_cpu_paging(name: str, optimizer: torch.optim.Optimizer) -> None:
    if not getattr(optimizer, "is_paged", False):
        return
    devices = {p.device.type for group in optimizer.param_groups for p in group["params"]}
    if devices == {"cpu"}:
        warnings.warn(f"trainer.optimizer.type {name}: paging moves optimizer state to CPU memory when the GPU runs "
                      "out; on the CPU there is nothing to page, so it runs unpaged (same updates, same memory)",
                      stacklevel=3)
        optimizer._cpu_paged_warned = True  # bitsandbytes' own warning would say the same again at the first step


def build_optimizer(model: torch.nn.Module, settings: dict, learning_rate: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    """The optimizer over the model's trainable parameters, or over the groups the model defines
    (`model.parameter_groups`, e.g. LoRA+); a group's `lr_scale` multiplies the scheduled rate."""
    options = {key: value for key, value in settings.items() if key != "type"}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    optimizer_cls = optimizers.get(settings["type"]).cls
    if isinstance(optimizer_cls, LazyOptimizer):
        optimizer_cls = optimizer_cls.load()
    if hasattr(model, "parameter_groups"):
        optimizer = model.parameter_groups(optimizer_cls, learning_rate, weight_decay, options)
    else:
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = optimizer_cls(trainable, lr=learning_rate, weight_decay=weight_decay, **options)
    _warn_cpu_paging(settings["type"], optimizer)
    return optimizer
