"""Benchmark: tokens/s of a LoRA fine-tune through the framework against a hand-written transformers +
peft loop, and peak memory; on a GPU, QLoRA of a 7B-architecture model under 12 GB.

Run by hand: `python benchmarks/llm_lora.py` (options: --examples, --epochs, --repeats, --model
tiny|smollm2, --threads; --qlora-7b on a GPU machine). Instruction/response pairs of widely varied
lengths (prompts of 4 to ~200 words, responses of 2 to 30) are generated, and in one run:

1. the hand-written loop: peft's LoRA on the same model, AdamW, examples shuffled each epoch and
   every batch padded to the longest example of the data set (what a loader that pads once up front
   does), prompt and padding masked out of the loss;
2. the framework's Trainer on the same tokens (the framework's own encoding: template, prompt mask,
   EOS), with batches padded to their own longest example, the same with trainer.group_by_length
   (batches of examples of similar length), and with packing (several examples per row of
   max_sequence_length tokens, each attending only to itself).

Throughput is real (non-padding) tokens per second: the same examples, so the same tokens, for
every loop. Target: framework >= 1.3x the hand-written loop (its best way). Each loop
runs in its own process, so its peak memory (peak RSS on the CPU, torch's peak allocation on a GPU)
is its own; the loops are interleaved across repeats and medians reported.

`--qlora-7b` (GPU only): a model of Llama-2-7B's shape with random weights, 4-bit NF4 + LoRA,
sequence 512, batch 1, gradient checkpointing, a few steps through the framework: peak GPU memory
must stay under 12 GB.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common import head, peak_memory_mb, word_llama

TARGET_RATIO = 1.3
QLORA_LIMIT_GB = 12.0
LORA = {"type": "lora", "r": 16, "lora_alpha": 32, "lora_dropout": 0.0}


# -- data and model ----------------------------------------------------------------------------------
def make_frame(examples: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(1500)]
    prompt_lengths = np.clip(rng.lognormal(3.3, 0.8, size=examples).astype(int), 4, 200)
    response_lengths = rng.integers(2, 31, size=examples)
    return pd.DataFrame({
        "instruction": [" ".join(rng.choice(words, n)) for n in prompt_lengths],
        "response": [" ".join(rng.choice(words, n)) for n in response_lengths],
    })


def build_tiny_llama(directory: Path) -> Path:
    """A random Llama (hidden 256, 4 layers) with a word-level tokenizer over the generated words."""
    return word_llama(directory, [f"w{i}" for i in range(1500)], intermediate=688, heads=8, bos=True)


def llm_config(base_model: str, epochs: int, batch_size: int, packing: bool, max_length: int,
               group_by_length: bool = False) -> dict:
    return {
        "model_type": "llm", "base_model": base_model,
        "input_features": [{"name": "instruction", "type": "text"}],
        "output_features": [{"name": "response", "type": "text"}],
        "prompt": {"template": "{instruction}", "chat_template": False},
        "adapter": dict(LORA),
        "trainer": {"epochs": epochs, "batch_size": batch_size, "learning_rate": 1e-4, "progress_bar": False,
                    "max_sequence_length": max_length, "packing": packing, "optimizer": {"type": "adamw"},
                    "evaluate_training_set": False, "group_by_length": group_by_length},
        "preprocessing": {"split": {"probabilities": [1.0, 0.0, 0.0]}},
        "seed": 3,
    }


# -- the loops, each in its own process --------------------------------------------------------------
def prepared(config: dict, frame: pd.DataFrame):
    from framework.config import load_config
    from framework.llm.data import prepare_llm_training
    from framework.llm.loading import check_causal_lm, load_tokenizer

    config = load_config(config)
    tokenizer = load_tokenizer(config)
    splits, _ = prepare_llm_training(config, tokenizer, frame, None, None, check_causal_lm(config))
    return config, splits["train"].arrays


def framework_loop(args: tuple) -> dict:
    """The framework's Trainer over its own prepared arrays (model building and preprocessing excluded)."""
    config, frame, threads = args
    import torch

    torch.set_num_threads(threads)
    from framework.data.dataset import ArrayDataset
    from framework.llm.runner import _device, build, total_steps
    from framework.training.seeding import seeded
    from framework.training.trainer import Trainer

    config, train = prepared(config, frame)
    device = _device(config)
    with seeded(config["seed"], device):
        module = build(config, device, total_steps(config, train))
        trainer = Trainer(module, config, device, run_dir=None)
        # the hand-written loop evaluates nothing: the epoch-end evaluation is one batch of validation rows,
        # and the training set is not evaluated again (evaluate_training_set: false)
        validation = head(train, config["trainer"]["batch_size"])
        start = time.perf_counter()
        result = trainer.fit(train, validation, ArrayDataset({}))
        seconds = time.perf_counter() - start
    output = config["output_features"][0]["name"]
    return {"seconds": seconds, "memory_mb": peak_memory_mb(device),
            "loss": result["train"][output]["loss"][-1]}


def hand_written_loop(args: tuple) -> dict:
    """transformers + peft as a tutorial writes it: the framework's tokens for each example (so both
    loops see the same tokens), every batch padded to the data set's longest example."""
    config, frame, threads = args
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    resolved, train = prepared({**config, "trainer": {**config["trainer"], "packing": False}}, frame)
    output = resolved["output_features"][0]["name"]
    ids, labels = train.columns["input_ids"], train.columns[output]
    # padded once up front, on the right, to the longest row of the whole data set (labels pad with -100)
    input_ids = torch.from_numpy(ids.padded())
    target = torch.from_numpy(labels.padded())
    mask = torch.from_numpy((np.arange(input_ids.shape[1]) < ids.lengths[:, None]).astype(np.int64))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_pretrained(resolved["base_model"], dtype=torch.float32).to(device)
    lora = {k: v for k, v in LORA.items() if k != "type"}
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", target_modules="all-linear", **lora))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch_size, epochs = resolved["trainer"]["batch_size"], resolved["trainer"]["epochs"]
    generator = torch.Generator().manual_seed(3)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(input_ids), generator=generator)
        losses = []
        for begin in range(0, len(order), batch_size):
            index = order[begin:begin + batch_size]
            loss = model(input_ids=input_ids[index].to(device), attention_mask=mask[index].to(device),
                         labels=target[index].to(device)).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.detach())
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "memory_mb": peak_memory_mb(device), "loss": float(torch.stack(losses).mean())}


def real_tokens(config: dict, frame: pd.DataFrame) -> int:
    _, train = prepared({**config, "trainer": {**config["trainer"], "packing": False}}, frame)
    return int(train.columns["input_ids"].lengths.sum())


def in_process(function, args) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, (args,))


# -- GPU: QLoRA of a 7B-shaped model ------------------------------------------------------------------
def qlora_7b(steps: int = 4) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from framework import Model

    if not torch.cuda.is_available():
        sys.exit("--qlora-7b needs a CUDA GPU")
    scratch = Path(tempfile.mkdtemp(prefix="qlora7b_"))
    shape = LlamaConfig(vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096)
    print("writing random Llama-2-7B-shaped weights (bf16, ~13.5 GB) ...", file=sys.stderr)
    with torch.device("cpu"):
        LlamaForCausalLM(shape).to(torch.bfloat16).save_pretrained(scratch / "model")
    build_tiny_llama(scratch / "tokenizer-source")  # any tokenizer whose ids fit in 32,000
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(scratch / "tokenizer-source").save_pretrained(scratch / "model")
    words = " ".join(f"w{i % 1500}" for i in range(700))
    frame = pd.DataFrame({"instruction": [words] * steps, "response": ["w1 w2 w3"] * steps})
    config = llm_config(str(scratch / "model"), 1, 1, False, 512)
    config["quantization"] = {"bits": 4, "quant_type": "nf4", "double_quant": True, "compute_dtype": "bfloat16"}
    config["trainer"].update(gradient_checkpointing=True, precision="bf16")
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    Model(config).train(frame, output_dir=None)
    return {"seconds": time.perf_counter() - start, "peak_gb": torch.cuda.max_memory_allocated() / 2**30}


# -- report ----------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--model", choices=["tiny", "smollm2"], default="tiny")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--qlora-7b", action="store_true", help="GPU: the 7B QLoRA memory check instead")
    args = parser.parse_args()
    if args.qlora_7b:
        result = qlora_7b()
        verdict = "PASS" if result["peak_gb"] < QLORA_LIMIT_GB else "FAIL"
        print(f"QLoRA, Llama-2-7B shape, seq 512, batch 1, checkpointing: peak GPU memory {result['peak_gb']:.2f} GB "
              f"(target < {QLORA_LIMIT_GB} GB) {verdict}; {result['seconds']:.0f} s")
        return
    scratch = Path(tempfile.mkdtemp(prefix="llm_lora_bench_"))
    if args.model == "smollm2":
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "llm_lora"))
        from train import smollm2_directory

        base_model = str(smollm2_directory())
    else:
        base_model = str(build_tiny_llama(scratch / "tiny-llama"))
    frame = make_frame(args.examples)
    configs = {name: llm_config(base_model, args.epochs, args.batch_size, packing, args.max_length, grouped)
               for name, packing, grouped in (("framework, batch-max padding", False, False),
                                              ("framework, group_by_length", False, True),
                                              ("framework, packing", True, False))}
    tokens = real_tokens(configs["framework, batch-max padding"], frame) * args.epochs
    loops = [("hand-written, dataset-max padding", hand_written_loop, configs["framework, batch-max padding"]),
             *[(name, framework_loop, config) for name, config in configs.items()]]
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in loops}
    for repeat in range(args.repeats):
        shift = repeat % len(loops)
        for name, function, config in loops[shift:] + loops[:shift]:
            print(f"repeat {repeat + 1}: {name} ...", file=sys.stderr)
            runs[name].append(in_process(function, (config, frame, args.threads)))
    baseline = tokens / statistics.median(r["seconds"] for r in runs[loops[0][0]])
    lengths = [len(a.split()) + len(b.split()) for a, b in zip(frame["instruction"], frame["response"])]
    print(f"\nLLM LoRA benchmark: {args.model} model, {args.examples} examples (words per example: mean "
          f"{np.mean(lengths):.0f}, max {max(lengths)}), batch {args.batch_size}, {args.epochs} epoch(s), "
          f"{tokens:,} real tokens per run, median of {args.repeats}")
    print(f"{'loop':<36}{'tokens/s':>12}{'ratio':>8}{'peak MB':>10}{'loss':>9}  target")
    print("-" * 86)
    best = 0.0
    for name, _, _ in loops:
        rate = tokens / statistics.median(r["seconds"] for r in runs[name])
        ratio = rate / baseline
        if name.startswith("framework"):
            best = max(best, ratio)
        memory = max(r["memory_mb"] for r in runs[name])
        print(f"{name:<36}{rate:>12,.0f}{ratio:>8.2f}{memory:>10,.0f}{runs[name][-1]['loss']:>9.4f}  "
              f"{'baseline' if name.startswith('hand') else '>= 1.3x'}")
    print(f"\nbest framework / hand-written: {best:.2f}x  {'PASS' if best >= TARGET_RATIO else 'FAIL'}")


if __name__ == "__main__":
    main()
