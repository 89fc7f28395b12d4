"""Loading a base model and its tokenizer: dtype, quantization, attention kernel, and the clear errors
for a path that is not there, a model that is not a causal LM, or 4-bit on a machine that cannot."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from framework.errors import ConfigError, FrameworkError, Problem

logger = logging.getLogger(__name__)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(FrameworkError):
    """The base model (or its tokenizer) cannot be loaded as configured."""


def _local_problem(name: str) -> str | None:
    """What is wrong with `name` as a local directory, when it is one or is written as a path (a hub name is
    `name` or `org/name`); transformers' own message then speaks of repo ids and network, which misleads."""
    path = Path(name).expanduser()
    written_as_path = path.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1
    if path.is_file():
        return f"'{name}' is a file; base_model is a directory holding config.json and the weights, or a hub name"
    if path.is_dir() and not (path / "config.json").is_file():
        found = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
        return (f"the directory '{name}' holds no config.json, so it is not a saved transformers model (found: "
                f"{found}); point base_model at the directory save_pretrained wrote")
    if written_as_path and not path.exists():
        return (f"the directory '{name}' does not exist (relative paths are read from {Path.cwd()}); base_model is "
                "a local directory holding config.json and the weights, or a hub name in the local cache")
    return None


def _hub_error(name: str, error: Exception) -> ModelLoadError:
    local = _local_problem(name)
    if local is not None:
        return ModelLoadError(f"cannot load base_model: {local}")
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
        if _local_problem(config["base_model"]) is None:
            check_causal_lm(config)  # a model of the wrong kind is the likelier cause, and says more
        raise _hub_error(config["base_model"], error) from None
    if tokenizer.eos_token_id is None:
        check_causal_lm(config)  # an encoder (BERT) has no EOS either: that it is no causal LM says more
        raise ModelLoadError(f"the tokenizer of '{config['base_model']}' has no EOS token; a causal LM fine-tune "
                             "appends it to every response so the model learns to stop")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def check_causal_lm(config: dict):
    """The model's transformers config, after checking that it is a causal language model."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    try:
        model_config = AutoConfig.from_pretrained(config["base_model"], trust_remote_code=config["trust_remote_code"])
    except (OSError, ValueError) as error:
        raise _hub_error(config["base_model"], error) from None
    remote = getattr(model_config, "auto_map", None) and "AutoModelForCausalLM" in model_config.auto_map
    # BERT, RoBERTa, BART ... have a causal LM class in transformers, which needs is_decoder: as saved, they
    # attend both ways and were trained to fill in masks, not to continue text
    masked = model_config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not model_config.is_decoder
    if (model_config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or masked) and not remote:
        architectures = ", ".join(getattr(model_config, "architectures", None) or []) or model_config.model_type
        raise ModelLoadError(f"base_model '{config['base_model']}' is a {model_config.model_type} model "
                             f"({architectures}), not a causal language model; model_type: llm needs one such as "
                             "Llama, Mistral, Qwen, GPT-2 or SmolLM (use it as a text encoder in an ecd model instead)")
    return model_config


def _dtype_problem(name: str, device: torch.device) -> str | None:
    if name == "float16" and device.type != "cuda":
        return (f"float16 needs a CUDA GPU and this run is on {device.type} (CPU kernels for float16 training are "
                "missing or slow); use bfloat16 (half the memory of float32, trains on CPUs) or float32")
    return None


def model_dtype(config: dict, device: torch.device) -> torch.dtype:
    name = config["model_dtype"]
    if name == "auto":
        cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    problem = _dtype_problem(name, device)
    if problem is not None:
        raise ModelLoadError(f"model_dtype: {problem}")
    return DTYPES[name]


def bitsandbytes_problem(device: torch.device) -> str | None:
    """Why bitsandbytes cannot run on `device`, or None when it can. Importing it is the only honest test
    (its native library is found, or not, at import), so this is called only when a config asks for it."""
    try:
        import bitsandbytes
    except (ImportError, RuntimeError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"bitsandbytes cannot be imported ({first})"
    supported = getattr(bitsandbytes, "supported_torch_devices", {"cpu", "cuda"})
    if device.type not in supported:
        return f"bitsandbytes {bitsandbytes.__version__} has no kernels for {device.type} devices"
    if device.type == "cuda":
        from bitsandbytes import cextension

        if isinstance(cextension.lib, cextension.ErrorHandlerMockBNBNativeLibrary):
            return (f"bitsandbytes {bitsandbytes.__version__} found no CUDA library matching this torch (CUDA "
                    f"{torch.version.cuda})")
    return None


BITSANDBYTES_OPTIONS = ("install a bitsandbytes build for this machine (pip install 'bitsandbytes>=0.50.2'; it "
                        "runs on CPUs and CUDA GPUs)")


def machine_problems(config: dict, device: torch.device) -> list[Problem]:
    """What this machine lacks for a resolved llm config, each with its key path: checked before any data
    is read, since the config itself is valid and only the machine can make it fail."""
    from framework.registry import optimizers

    problems = []
    dtype = _dtype_problem(config["model_dtype"], device)
    if dtype is not None:
        problems.append(Problem("model_dtype", dtype))
    quantization = config["quantization"]
    if quantization is not None and (reason := bitsandbytes_problem(device)) is not None:
        problems.append(Problem("quantization", f"{quantization['bits']}-bit weights need bitsandbytes, and "
                                                f"{reason}; {BITSANDBYTES_OPTIONS}, or drop the quantization "
                                                "section (model_dtype: bfloat16 halves memory instead)"))
    attention = _attention_problem(config["attention"], device)
    if attention is not None:
        problems.append(Problem("attention", attention))
    optimizer = (config.get("trainer") or {}).get("optimizer") or {}
    entry = optimizers.get(optimizer["type"]) if optimizer.get("type") in optimizers else None
    if entry is not None and entry.extra.get("requires") == "bitsandbytes" \
            and (reason := bitsandbytes_problem(device)) is not None:
        problems.append(Problem("trainer.optimizer.type", f"'{optimizer['type']}' is a bitsandbytes optimizer, and "
                                                          f"{reason}; {BITSANDBYTES_OPTIONS}, or use adamw"))
    return problems


def check_machine(config: dict, device: torch.device) -> None:
    problems = machine_problems(config, device)
    if problems:
        raise ConfigError(problems)


class _FirstOnly(logging.Filter):
    """Lets one record through: bitsandbytes logs its 8-bit input cast at every matmul."""

    def __init__(self):
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "MatMul8bitLt" not in record.getMessage():
            return True
        seen, self.seen = self.seen, True
        return not seen


_EIGHT_BIT_CAST_ONCE = _FirstOnly()


def quantization_config(settings: dict | None, dtype: torch.dtype, device: torch.device | None = None):
    if settings is None:
        return None
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    reason = bitsandbytes_problem(device)
    if reason is not None:
        raise ModelLoadError(f"quantization needs bitsandbytes, and {reason}; {BITSANDBYTES_OPTIONS}, or drop the "
                             "quantization section (model_dtype: bfloat16 halves memory instead)")
    from transformers import BitsAndBytesConfig

    compute = dtype if settings["compute_dtype"] == "auto" else DTYPES[settings["compute_dtype"]]
    if settings["bits"] == 4:
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=settings["quant_type"],
                                  bnb_4bit_use_double_quant=settings["double_quant"], bnb_4bit_compute_dtype=compute,
                                  llm_int8_skip_modules=settings["skip_modules"])
    # LLM.int8 casts every matmul's input to float16 and logs it each time; once tells the user
    logging.getLogger("bitsandbytes.autograd._functions").addFilter(_EIGHT_BIT_CAST_ONCE)
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=settings["llm_int8_threshold"],
                              llm_int8_skip_modules=settings["skip_modules"])


def _attention_problem(name: str, device: torch.device) -> str | None:
    if name != "flash_attention_2":
        return None
    if device.type != "cuda":
        return (f"flash_attention_2 needs a CUDA GPU and this run is on {device.type}; use attention: sdpa (what "
                "auto picks there)")
    try:
        import flash_attn  # noqa: F401 - its absence is what we check
    except ImportError:
        return "flash_attention_2 needs the flash-attn package (pip install flash-attn), or use sdpa"
    return None


def attention_implementation(config: dict, device: torch.device) -> str | None:
    name = config["attention"]
    problem = _attention_problem(name, device)
    if problem is not None:
        raise ModelLoadError(f"attention: {problem}")
    return None if name == "auto" else name


def load_base_model(config: dict, device: torch.device):
    """The causal LM, quantized and placed on `device` when asked, ready for an adapter."""
    from transformers import AutoModelForCausalLM

    check_causal_lm(config)
    _warn_remote_code(config)
    dtype = model_dtype(config, device)
    quantization = quantization_config(config["quantization"], dtype, device)
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
    if quantization is not None:
        keep_4bit_weights_trainable(model)
    model.config.use_cache = False  # training; generation turns it back on
    return model


def keep_4bit_weights_trainable(model) -> None:
    """bitsandbytes repacks a 4-bit layer's weights for its AVX512-BF16 CPU kernel at the first forward
    pass in eval mode, for good: later training passes through that kernel carry no gradient to the layer's
    input (adapters below it stop learning, silently), results shift by bf16 rounding between training and
    evaluation, and layers narrower than one quantization block fail. Turning the repacking off keeps one
    kernel for training, evaluation and prediction."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def prepare_for_training(model, config: dict):
    """Quantized weights frozen (and their norms upcast) for an adapter, and activation checkpointing.
    Non-reentrant checkpointing keeps the graph through frozen embeddings, so no input-grad hook is needed."""
    if config["quantization"] is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if config["trainer"]["gradient_checkpointing"]:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return model
