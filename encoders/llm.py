"""Any Hugging Face model (a decoder LLM or a BERT-like encoder) as the encoder of a text feature.

The feature is tokenized with the model's own tokenizer (the config resolution sets the feature's
preprocessing to it), so the model sees its own ids. The model can be frozen (`trainable: false`,
the default), adapted with a peft adapter (only the adapter trains), fine-tuned whole
(`trainable: true`), and quantized with bitsandbytes, each per encoder.

Frozen and unadapted, its pooled outputs depend only on the text: the data pipeline then computes
them once and caches them on disk (framework/data/embedding_cache.py), and this module is built
without the model (`embeddings_cached`): it receives the cached vectors and passes them on, so
training costs only the head.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any

import marshmallow
import torch
from marshmallow import fields
from torch import nn

from encoders._sequence_pooling import reduce_states
from framework.config import fields as f
from framework.config.problems import Problems
from framework.errors import FrameworkError
from framework.models.encoded import Encoded
from framework.registry import register_encoder

POOLINGS = ["auto", "last", "mean", "cls", "first", "max"]


class LLMEncoderSchema(f.Schema):
    base_model = f.Str(required=True, doc="a Hugging Face model name or a local directory holding one")
    trust_remote_code = f.Bool(False, doc="run the model repository's own Python code (off unless you trust it)")
    dtype = f.Choice(["auto", "float32", "bfloat16", "float16"], "auto",
                     doc="weights' dtype: auto is bfloat16 on a GPU that supports it, else float32")
    pooling = f.Choice(POOLINGS, "auto", doc="one vector per text: last (the last real token: for decoder LLMs), "
                                             "mean (masked), cls / first, max; auto: last for decoder-only models, "
                                             "mean for bidirectional encoders")
    layer = f.Int(-1, doc="hidden layer pooled: -1 the last, 0 the embeddings, k the k-th layer's output")
    max_sequence_length = f.Int(256, min=2, doc="tokens kept per text (the feature's preprocessing follows it)")
    trainable = f.Bool(False, doc="train the model's weights (with an adapter: only the adapter trains)")
    adapter = f.Any_(None, doc="a peft adapter {type: lora|dora|ia3|..., ...}, as for model_type llm")
    quantization = f.Any_(None, doc="{bits: 4|8, ...}: bitsandbytes weights, as for model_type llm")
    cache = f.Bool(True, doc="frozen and unadapted: compute the embeddings once and cache them on disk")

    @marshmallow.pre_load
    def _adapter_means_trainable(self, data: Any, **kwargs: Any) -> Any:
        """An adapter is what trains: with one and no explicit `trainable`, the encoder is trainable."""
        if isinstance(data, dict) and data.get("adapter") not in (None, "none") and "trainable" not in data:
            data = {**data, "trainable": True}
        return data

    @marshmallow.validates_schema
    def _check_sections(self, data: dict, **kwargs: Any) -> None:
        from framework.llm.adapters import resolve_adapter
        from framework.llm.schemas import QuantizationSchema

        errors: dict[str, Any] = {}
        problems = Problems()
        adapter = resolve_adapter(data.get("adapter"), problems)
        if problems.items:
            errors["adapter"] = [f"{p.path.removeprefix('adapter').lstrip('.') or 'adapter'}: {p.message}"
                                 for p in problems.items]
        elif adapter["type"] != "none" and not data.get("trainable", False):
            errors["trainable"] = ["false contradicts the adapter (an adapter trains); drop the adapter to freeze "
                                   "the encoder, or set trainable: true"]
        if data.get("quantization") is not None:
            try:
                QuantizationSchema().load(data["quantization"])
            except marshmallow.ValidationError as error:
                errors["quantization"] = error.messages
            if data.get("trainable") and adapter["type"] == "none":
                errors["quantization"] = ["quantized weights cannot be trained directly: add an adapter, or set "
                                          "trainable: false"]
        if errors:
            raise marshmallow.ValidationError(errors)

    @marshmallow.post_load
    def _resolve_sections(self, data: dict, **kwargs: Any) -> dict:
        from framework.llm.adapters import resolve_adapter
        from framework.llm.schemas import QuantizationSchema

        adapter = resolve_adapter(data.get("adapter"), Problems())
        data["adapter"] = None if adapter["type"] == "none" else adapter
        if data.get("quantization") is not None:
            data["quantization"] = QuantizationSchema().load(data["quantization"])
        return data


def cacheable(settings: dict) -> bool:
    """Whether the encoder's output depends on the text alone (frozen, unadapted), so it can be cached."""
    return settings["cache"] and not settings["trainable"] and settings["adapter"] is None


def hidden_size(model_config) -> int:
    for name in ("hidden_size", "d_model", "n_embd", "dim"):
        value = getattr(model_config, name, None)
        if isinstance(value, int):
            return value
    raise FrameworkError(f"cannot tell the hidden size of a {model_config.model_type} model")


def is_decoder_only(model_config) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if getattr(model_config, "is_encoder_decoder", False):
        return False
    return model_config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and \
        model_config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def resolve_pooling(pooling: str, model_config, base_model: str) -> str:
    decoder = is_decoder_only(model_config)
    if pooling == "auto":
        return "last" if decoder else "mean"
    if pooling == "cls" and decoder:
        import warnings

        warnings.warn(f"pooling 'cls' on '{base_model}', a decoder-only model: it has no CLS token, so the first "
                      "token's state is used (it has seen only itself); 'last' is the usual choice", stacklevel=3)
    return "first" if pooling == "cls" else pooling


def load_model_config(base_model: str, trust_remote_code: bool):
    from transformers import AutoConfig

    from framework.llm.loading import ModelLoadError

    try:
        return AutoConfig.from_pretrained(base_model, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"cannot load the llm encoder's base_model '{base_model}': {str(error).splitlines()[0]} "
                             "(give a local directory, or a hub name in the local Hugging Face cache)") from None


class _HeadlessLoadReport(logging.Filter):
    """Drops transformers' load report when its only entries are UNEXPECTED keys: loading a base model from
    a task checkpoint (a causal LM's lm_head, a classifier) always leaves the head's weights out, so the
    report would greet every user of a decoder LLM as an encoder. MISSING or mismatched weights (a base
    that would run partly random) are still reported."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" not in message:
            return True
        return any(status in message for status in ("MISSING", "MISMATCH", "CONVERSION"))


@contextlib.contextmanager
def _quiet_head_drop():
    logger = logging.getLogger("transformers.modeling_utils")
    report_filter = _HeadlessLoadReport()
    logger.addFilter(report_filter)
    try:
        yield
    finally:
        logger.removeFilter(report_filter)


def _load_model(settings: dict):
    """The transformers model without a task head, quantized and adapted as configured."""
    from transformers import AutoModel

    from framework.llm import loading

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = loading.model_dtype({"model_dtype": settings["dtype"]}, device)
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": settings["trust_remote_code"]}
    quantization = loading.quantization_config(settings["quantization"], dtype)
    if quantization is not None:
        kwargs.update(quantization_config=quantization, device_map={"": device})
    try:
        with _quiet_head_drop():
            model = AutoModel.from_pretrained(settings["base_model"], **kwargs)
    except (OSError, ValueError) as error:
        raise loading.ModelLoadError(f"cannot load the llm encoder's base_model '{settings['base_model']}': "
                                     f"{str(error).splitlines()[0]}") from None
    if quantization is not None:
        loading.keep_4bit_weights_trainable(model)
    if settings["adapter"]["type"] != "none":
        from framework.llm.adapters import apply_adapter

        if quantization is not None:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model = apply_adapter(model, settings["adapter"], total_steps=None, task_type="FEATURE_EXTRACTION")
    elif not settings["trainable"]:
        model.requires_grad_(False)
    return model


@register_encoder("llm", schema=LLMEncoderSchema, types=("text",))
class LLMEncoder(nn.Module):
    """Token ids [B, T] -> the pooled hidden states of a Hugging Face model; or, when the pipeline cached
    the embeddings, the cached vectors [B, H] passed on."""

    def __init__(self, pad_id: int, embeddings_cached: bool, *, base_model: str, trust_remote_code: bool = False,
                 dtype: str = "auto", pooling: str = "auto", layer: int = -1, max_sequence_length: int = 256,
                 trainable: bool = False, adapter: dict | None = None, quantization: dict | None = None,
                 cache: bool = True):
        super().__init__()
        self.settings = {"base_model": base_model, "trust_remote_code": trust_remote_code, "dtype": dtype,
                         "trainable": trainable, "adapter": adapter or {"type": "none"}, "quantization": quantization}
        model_config = load_model_config(base_model, trust_remote_code)
        self.output_size = hidden_size(model_config)
        self.pooling = resolve_pooling(pooling, model_config, base_model)
        self.layer = layer
        self.pad_id = pad_id
        self.cached = embeddings_cached
        # loading draws random numbers (weights initialised, then overwritten): a forked generator keeps
        # the rest of the model's initialisation the same with the embeddings cached or not
        with torch.random.fork_rng(devices=[]):
            self.model = None if embeddings_cached else _load_model(self.settings)

    @property
    def quantized(self) -> bool:
        return self.settings["quantization"] is not None

    def train(self, mode: bool = True):
        """A frozen model stays in eval mode: no dropout, so its outputs are the cached ones exactly."""
        super().train(mode)
        if self.model is not None and not self.settings["trainable"]:
            self.model.eval()
        return self

    def _apply(self, fn, recurse: bool = True):
        if self.quantized:  # bitsandbytes weights are placed while loading and never moved or cast
            return self
        return super()._apply(fn, recurse)

    def forward(self, x: torch.Tensor) -> Encoded:
        if self.cached:
            return Encoded(x.float())
        mask = x != self.pad_id
        ids = x.masked_fill(~mask, 0) if self.pad_id >= 0 else x
        out = self.model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=self.layer != -1)
        states = out.last_hidden_state if self.layer == -1 else out.hidden_states[self.layer]
        states = states.float()
        return Encoded(reduce_states(states.masked_fill(~mask.unsqueeze(-1), 0.0), mask, self.pooling), states, mask)

    def saved_parameter_names(self) -> set[str] | None:
        """What a saved model must hold of this module (names relative to it), or None for everything:
        a frozen model's weights come from base_model again, an adapted one's too except the adapter."""
        if self.model is None or (self.settings["trainable"] and self.settings["adapter"]["type"] == "none"):
            return None
        return {f"model.{name}" for name, p in self.model.named_parameters() if p.requires_grad}


def preprocessing_for(settings: dict) -> dict:
    """The text preprocessing this encoder needs: its model's own tokenizer and length."""
    return {"tokenizer": "pretrained", "pretrained_tokenizer": settings["base_model"],
            "max_sequence_length": settings["max_sequence_length"]}


LLMEncoder.preprocessing_for = staticmethod(preprocessing_for)
LLMEncoder.cacheable = staticmethod(cacheable)
