"""Which optional extra provides each optional library, so a missing one is reported as the install
command that brings it, not as an ImportError from deep inside a command."""
from __future__ import annotations

from framework.errors import FrameworkError

EXTRA_OF = {
    "PIL": "image", "soundfile": "audio",
    "transformers": "llm", "peft": "llm", "bitsandbytes": "llm", "accelerate": "llm", "tokenizers": "llm",
    "deepspeed": "deepspeed", "optuna": "hyperopt", "matplotlib": "viz",
    "fastapi": "serve", "uvicorn": "serve", "multipart": "serve", "python_multipart": "serve",
    "onnx": "export", "onnxscript": "export", "huggingface_hub": "upload",
    "tensorboard": "tracking", "mlflow": "tracking",
}


def missing_extra(error: ModuleNotFoundError) -> FrameworkError | None:
    """The install hint for an optional library that is not installed; None for anything else (a
    missing module of framework itself, or of a required dependency, stays a bug to see)."""
    root = (error.name or "").split(".")[0]
    extra = EXTRA_OF.get(root)
    if extra is None:
        return None
    return FrameworkError(f"this needs the '{root}' package, which is not installed: "
                          f"pip install 'framework[{extra}]'")
