"""Loading a base model and its tokenizer: dtype, quantization, attention kernel, and the clear errors
for a path that is not there, a model that is not a causal LM, or 4-bit on a machine that cannot."""
from __future__ import annotations

import logging
import warnings

import torch

from framework.errors import FrameworkError

logger = logging.getLogger(__name__)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(FrameworkError):
    """The base model (or its tokenizer) cannot be loaded as configured."""


def _hub_error(name: str, error: Exception) -> ModelLoadError:
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ModelLoadError(f"cannot load base_model '{name}': {first} (give a local directory holding config.json "
                          "and the weights, or a hub name that is in the local Hugging Face cache; nothing is "
                          "downloaded without network)")


def _warn_remote_code(config: dict) -> None:
    if config["trust_remote_code"]:
        warnings.warn(f"trust_remote_code is on: the Python code shipped with '{config['base_model']}' will run",
                      stacklevel=3)


def load_tokenizer(config: dict):
    """The base model's tokenizer, with a pad token (its EOS when it has none) and left padding for generation."""
    from transformers import AutoTokenizer

    _warn_remote_code(config)
    try:
        tokenizer = AutoTokenizer.from_pretrained(config["base_model"], trust_remote_code=config["trust_remote_code"])
    except (OSError, ValueError) as error:
        raise _hub_error(config["base_model"], error) from None
    if tokenizer.eos_token_id is None:
        raise ModelLoadError(f"the tokenizer of '{config['base_model']}' has no EOS token; a causal LM fine-tune "
                             "appends it to every response so the model learns to stop")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def check_causal_lm(config: dict):
    """The model's transformers config, after checking that it is a causal language model."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        model_config = AutoConfig.from_pretrained(config["base_model"], trust_remote_code=config["trust_remote_code"])
    except (OSError, ValueError) as error:
        raise _hub_error(config["base_model"], error) from None
    remote = getattr(model_config, "auto_map", None) and "AutoModelForCausalLM" in model_config.auto_map
    if model_config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not remote:
        architectures = ", ".join(getattr(model_config, "architectures", None) or []) or model_config.model_type
        raise ModelLoadError(f"base_model '{config['base_model']}' is a {model_config.model_type} model "
                             f"({architectures}), not a causal language model; model_type: llm needs one such as "
                             "Llama, Mistral, Qwen, GPT-2 or SmolLM (use it as a text encoder in an ecd model instead)")
    return model_config


def model_dtype(config: dict, device: torch.device) -> torch.dtype:
    name = config["model_dtype"]
    if name == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    if name == "float16" and device.type != "cuda":
        raise ModelLoadError("model_dtype float16 needs a CUDA GPU (CPU kernels are missing for it); use bfloat16 "
                             "or float32")
    return DTYPES[name]


def quantization_config(settings: dict | None, dtype: torch.dtype):
    if settings is None:
        return None
    try:
        import bitsandbytes  # noqa: F401 - its absence is what we check
    except ImportError as error:
        raise ModelLoadError(f"quantization needs bitsandbytes, which cannot be imported here ({error}); install "
                             "it (pip install 'framework[llm]'), or drop the quantization section and use "
                             "model_dtype: bfloat16 to halve memory instead") from None
    from transformers import BitsAndBytesConfig

    compute = dtype if settings["compute_dtype"] == "auto" else DTYPES[settings["compute_dtype"]]
    if settings["bits"] == 4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=settings["quant_type"],
                                  bnb_4bit_use_double_quant=settings["double_quant"], bnb_4bit_compute_dtype=compute,
                                  llm_int8_skip_modules=settings["skip_modules"])
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=settings["llm_int8_threshold"],
                              llm_int8_skip_modules=settings["skip_modules"])


def attention_implementation(config: dict, device: torch.device) -> str | None:
    name = config["attention"]
    if name == "flash_attention_2":
        if device.type != "cuda":
            raise ModelLoadError("attention: flash_attention_2 needs a CUDA GPU; use sdpa (the default) on the CPU")
        try:
            import flash_attn  # noqa: F401
        except ImportError:
            raise ModelLoadError("attention: flash_attention_2 needs the flash-attn package (pip install flash-attn); "
                                 "or use sdpa") from None
    return None if name == "auto" else name


def load_base_model(config: dict, device: torch.device):
    """The causal LM, quantized and placed on `device` when asked, ready for an adapter."""
    from transformers import AutoModelForCausalLM

    check_causal_lm(config)
    _warn_remote_code(config)
    dtype = model_dtype(config, device)
    quantization = quantization_config(config["quantization"], dtype)
    kwargs = {"dtype": dtype, "trust_remote_code": config["trust_remote_code"]}
    attention = attention_implementation(config, device)
    if attention is not None:
        kwargs["attn_implementation"] = attention
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = {"": device}  # quantized weights are placed while loading and never moved
    try:
        model = AutoModelForCausalLM.from_pretrained(config["base_model"], **kwargs)
    except (OSError, ValueError) as error:
        raise _hub_error(config["base_model"], error) from None
    except (RuntimeError, ImportError) as error:
        if quantization is None:
            raise
        raise ModelLoadError(f"{config['quantization']['bits']}-bit quantization failed on {device.type}: "
                             f"{str(error).splitlines()[0]}; try bits: 8, or drop quantization and use model_dtype: "
                             "bfloat16") from None
    model.config.use_cache = False  # training; generation turns it back on
    return model
