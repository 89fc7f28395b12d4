"""Packaging for framework: a declarative deep-learning framework (config in, trained model out)."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "framework" / "version.py").read_text()).group(1)

CORE = [
    "torch>=2.6,<3",
    "pandas>=3.1,<4",
    "pyarrow>=26",
    "marshmallow>=4.4,<5",
    "tqdm>=4.66",
    "pyyaml>=6",
    "safetensors>=0.4",
    "numpy>=1.26",
    # text and sequence metrics (BLEU, ROUGE-L, edit distance), imported only when computed
    "sacrebleu>=2.4",
    "rouge-score>=0.1.2",
    "editdistance>=0.8",
]
LLM = [
    "transformers>=5.23,<6",
    "peft>=0.21.2,<0.22",
    "bitsandbytes>=0.50.2,<1",
    "accelerate>=1.0",
]
EXTRAS = {
    "llm": LLM,
    "deepspeed": ["deepspeed>=0.19.8,<0.20"],
    # not torchvision: PyPI's wheels are built against the CUDA torch, fail to import beside the CPU one
    # and then break transformers' model imports; encoders/_torchvision_arch.py holds its ResNet and ViT
    "image": ["pillow>=10"],
    "audio": ["soundfile>=0.12"],
    "hyperopt": ["optuna>=4"],
    "viz": ["matplotlib>=3.8"],
    "serve": ["fastapi>=0.110", "uvicorn>=0.30", "python-multipart>=0.0.9"],
    "export": ["onnx>=1.16", "onnxscript>=0.2"],
    "upload": ["huggingface-hub>=0.24"],
    "tracking": ["tensorboard>=2.15", "mlflow-skinny>=2.10"],
}
EXTRAS["full"] = sorted({req for reqs in EXTRAS.values() for req in reqs})
# the tests exercise every optional capability for real (tiny Hugging Face models built offline, DeepSpeed
# over gloo, a served model), so they install them all
EXTRAS["test"] = ["pytest>=8", "hypothesis>=6", "scikit-learn>=1.5", "httpx>=0.27", "gguf>=0.10", *EXTRAS["full"]]

setup(
    name="framework",
    version=VERSION,
    description="Declarative multimodal deep learning: a YAML config in, a trained model out.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["framework", "framework.*", "encoders", "decoders", "combiners"]),
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["framework = framework.cli:main"]},
)
