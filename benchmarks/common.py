"""What the benchmarks share: the timed hand-written training loop every baseline runs, the framework's
Trainer timed the same way, and a tiny word-level Llama built offline. One definition keeps the
baselines comparable with each other (same epoch and step accounting everywhere)."""
from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path
from typing import Callable

import torch

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]


def timed_steps(step: Callable[[torch.Tensor], torch.Tensor], rows: int, batch_size: int, steps: int,
                seed: int) -> tuple[float, float]:
    """Seconds for `steps` calls of `step(index)` (forward, backward and optimizer step of one batch of row
    indices), a fresh permutation each epoch as an idiomatic PyTorch loop does, and the last epoch's
    mean loss."""
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    done = 0
    while done < steps:
        order = torch.randperm(rows, generator=generator)
        loss_sum, batches = torch.zeros(()), 0
        for begin in range(0, rows, batch_size):
            loss_sum += step(order[begin: begin + batch_size]).detach()
            batches += 1
            done += 1
            if done == steps:
                break
    return time.perf_counter() - start, loss_sum.item() / batches


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> torch.Tensor:
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def framework_run(config: dict, train, validation, metadata: dict) -> tuple[float, float]:
    """Seconds of Trainer.fit on an ECD model (construction excluded: the loop, the per-epoch statistics
    and a small validation), and the last epoch's mean training loss."""
    from framework.data.dataset import ArrayDataset
    from framework.models.ecd import ECD
    from framework.training.seeding import seeded
    from framework.training.trainer import Trainer

    device = torch.device("cpu")
    with seeded(config["seed"], device):
        trainer = Trainer(ECD(config, metadata), config, device, run_dir=None)
        start = time.perf_counter()
        result = trainer.fit(train, validation, ArrayDataset({}))
        return time.perf_counter() - start, result["train"]["combined"]["loss"][-1]


def head(dataset, rows: int):
    """The first rows of a split; an image column kept as paths (LazyImages) stays one (a slice of it
    would be a chunk already decoding)."""
    from framework.data.dataset import ArrayDataset

    def first(column):
        if hasattr(column, "paths"):
            return type(column)(column.paths[:rows], column.spec, column.name)
        return column[:rows]

    return ArrayDataset({name: first(column) for name, column in dataset.columns.items()})


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process in MiB: torch's peak allocation on a GPU (tensors only), the peak
    resident set (ru_maxrss) on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**20  # Linux reports KiB


def training_arguments(parser: argparse.ArgumentParser, rows: int, repeats: int,
                       threads_help: str = "torch.set_num_threads for every loop") -> argparse.ArgumentParser:
    """The arguments every ECD training benchmark takes: --rows, --epochs, --repeats, --batch-size,
    --threads."""
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed training run")
    parser.add_argument("--repeats", type=int, default=repeats, help="timed runs of each loop (median reported)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help=threads_help)
    return parser


def word_llama(directory: Path, words: list[str], *, hidden: int = 256, intermediate: int = 512, layers: int = 4,
               heads: int = 4, max_positions: int = 512, bos: bool = False) -> Path:
    """A random-weight Llama and a word-level tokenizer over `words`, saved like a hub checkpoint (with
    `bos`, the tokenizer starts every text with <s>)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + sorted(set(words) - set(SPECIALS)))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>", pad_token="<pad>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=max_positions, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
