"""Packaging for framework: a declarative deep-learning framework (config in, trained model out)."""
import re
from pathlib import Path

from setuptools import setup

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
}
EXTRAS["full"] = sorted({req for reqs in EXTRAS.values() for req in reqs})
# the tests build tiny Hugging Face models and tokenizers offline, so they need the LLM stack too
EXTRAS["test"] = ["pytest>=8", "hypothesis>=6", "scikit-learn>=1.5", *LLM]

setup(
    name="framework",
    version=VERSION,
    description="Declarative multimodal deep learning: a YAML config in, a trained model out.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=[
        "framework",
        "framework.config",
        "framework.data",
        "framework.features",
        "framework.losses",
        "framework.metrics",
        "framework.models",
        "framework.training",
        "encoders",
        "decoders",
        "combiners",
    ],
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["framework = framework.cli:main"]},
)
