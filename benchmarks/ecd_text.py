"""Benchmark: text classification with parallel_cnn: tokenization, training throughput, and padding.

Run by hand: `python benchmarks/ecd_text.py` (options: --rows, --epochs, --repeats, --threads,
--batch-size). It generates short texts of 5 classes in memory (varied lengths, 4 to 60 words, most
short) and measures, in one run:

1. tokenization: `prepare_training` with the cache off (space_punct tokenizer, vocabulary fit,
   ids, <EOS>) against a plain-Python baseline doing the same work with a regex, a Counter and a
   dict lookup per word; rows/s of each;
2. training: the framework's Trainer on the prepared arrays against a hand-written PyTorch loop of
   the same network (embedding, four convolutions of widths 2-5 reading zeros at padding, a per-token
   fc layer, max over time, the combiner's fc layer, the classifier), same optimizer, batch size
   and number of steps (target: >= 0.9x the hand-written rows/s);
3. padding: the same hand-written loop with every batch padded to the dataset's longest row, as a
   loader that pads once up front does, against batches padded to their own longest row (what the
   framework does): the speed-up batch-max padding buys on data whose lengths vary;
4. trainer.group_by_length: the framework's Trainer with batches of similar lengths against without.

The loops run interleaved, alternating which goes first, on the same thread count; medians are
reported.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import Counter

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from common import framework_run, head, optimizer_step, timed_steps, training_arguments
from framework.config import load_config
from framework.data.pipeline import prepare_training

TRAINING_TARGET_RATIO = 0.9
CLASSES = ["business", "sport", "politics", "tech", "culture"]
FILTER_SIZES = (2, 3, 4, 5)
EMBEDDING, FILTERS, TOKEN_FC, COMBINER_FC = 64, 32, 64, 128


# -- data ------------------------------------------------------------------------------------------
def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Texts of Zipf-distributed filler words (a 20,000-word vocabulary) with a few keywords of their
    class mixed in, some punctuation and capitals; lengths from 4 to 60 words, most under 20."""
    rng = np.random.default_rng(seed)
    filler = np.array([f"word{i}" for i in range(20_000)], dtype=object)
    popularity = 1.0 / np.arange(1, len(filler) + 1)
    keywords = {label: [f"{label}{i}" for i in range(30)] for label in CLASSES}
    labels = rng.choice(len(CLASSES), size=rows)
    lengths = np.clip(rng.gamma(2.0, 6.0, size=rows).astype(int), 4, 60)
    words = filler[rng.choice(len(filler), size=int(lengths.sum()), p=popularity / popularity.sum())]
    texts, start = [], 0
    for label, length in zip(labels, lengths):
        row = list(words[start:start + length])
        start += length
        for _ in range(1 + length // 10):
            row[rng.integers(length)] = keywords[CLASSES[label]][rng.integers(30)].capitalize()
        texts.append(" ".join(row) + rng.choice([".", "!", "?", ", ok."]))
    return pd.DataFrame({"text": texts, "label": np.array(CLASSES, dtype=object)[labels]})


def make_config(epochs: int, batch_size: int, group_by_length: bool = False) -> dict:
    return load_config({
        "input_features": [{"name": "text", "type": "text",
                            "preprocessing": {"tokenizer": "space_punct", "max_sequence_length": 128},
                            "encoder": {"type": "parallel_cnn", "embedding_size": EMBEDDING, "num_filters": FILTERS,
                                        "filter_sizes": list(FILTER_SIZES), "output_size": TOKEN_FC}}],
        "output_features": [{"name": "label", "type": "category"}],
        "combiner": {"type": "concat", "num_fc_layers": 1, "output_size": COMBINER_FC},
        "trainer": {"epochs": epochs, "batch_size": batch_size, "early_stop": 0, "learning_rate": 1e-3,
                    "optimizer": {"type": "adam"}, "progress_bar": False, "device": "cpu",
                    "group_by_length": group_by_length},
        "preprocessing": {"cache": False, "split": {"type": "random", "probabilities": [0.9, 0.05, 0.05]}},
        "seed": 42,
    })


# -- 1. tokenization -------------------------------------------------------------------------------
TOKEN = re.compile(r"\w+|[^\w\s]")


def plain_python_tokenization(texts: list[str], most_common: int = 20_000) -> list[list[int]]:
    """What a hand-rolled preprocessor does: lowercase, a regex per text, a Counter for the
    vocabulary, a dict lookup per token, <EOS> at the end."""
    tokenized = [TOKEN.findall(text.lower()) for text in texts]
    counts = Counter(token for tokens in tokenized for token in tokens)
    vocab = {token: index + 4 for index, (token, _) in enumerate(counts.most_common(most_common))}
    return [[vocab.get(token, 1) for token in tokens] + [3] for tokens in tokenized]


def time_tokenization(frame: pd.DataFrame, config: dict, repeats: int) -> dict:
    texts = frame["text"].tolist()
    framework_seconds, plain_seconds = [], []
    prepared = None
    for _ in range(repeats):
        start = time.perf_counter()
        prepared = prepare_training(config, frame)
        framework_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        plain_python_tokenization(texts)
        plain_seconds.append(time.perf_counter() - start)
    return {"framework": statistics.median(framework_seconds), "plain": statistics.median(plain_seconds),
            "prepared": prepared}


# -- 2 and 3. training -----------------------------------------------------------------------------
class HandWritten(nn.Module):
    """The network the config builds, written out."""

    def __init__(self, vocab_size: int, classes: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, EMBEDDING, padding_idx=0)
        self.convolutions = nn.ModuleList(nn.Conv1d(EMBEDDING, FILTERS, size) for size in FILTER_SIZES)
        self.token_fc = nn.Linear(FILTERS * len(FILTER_SIZES), TOKEN_FC)
        self.combiner = nn.Linear(TOKEN_FC, COMBINER_FC)
        self.out = nn.Linear(COMBINER_FC, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).unsqueeze(-1)
        states = self.embedding(ids).masked_fill(~mask, 0.0).transpose(1, 2)
        outputs = []
        for conv, size in zip(self.convolutions, FILTER_SIZES):
            left = (size - 1) // 2
            outputs.append(F.relu(conv(F.pad(states, (left, size - 1 - left)))))
        tokens = F.relu(self.token_fc(torch.cat(outputs, 1).transpose(1, 2)))
        pooled = tokens.masked_fill(~mask, torch.finfo(tokens.dtype).min).amax(1)
        return self.out(F.relu(self.combiner(pooled)))


def hand_written_run(ids: np.ndarray, lengths: np.ndarray, labels: np.ndarray, vocab_size: int, classes: int,
                     batch_size: int, steps: int, seed: int, batch_max: bool) -> tuple[float, float]:
    """Seconds for `steps` optimizer steps over ids padded once to the dataset's longest row; with
    `batch_max`, each batch is cut to its own longest row first. Returns the last epoch's mean loss too."""
    torch.manual_seed(seed)
    model = HandWritten(vocab_size, classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ids_t, lengths_t, labels_t = torch.from_numpy(ids), torch.from_numpy(lengths), torch.from_numpy(labels)
    model.train()

    def step(index: torch.Tensor) -> torch.Tensor:
        batch = ids_t[index]
        if batch_max:
            batch = batch[:, :int(lengths_t[index].max())]
        return optimizer_step(F.cross_entropy(model(batch), labels_t[index]), optimizer)

    return timed_steps(step, len(labels_t), batch_size, steps, seed)


def time_training(prepared, epochs: int, batch_size: int, repeats: int) -> dict:
    train = prepared.splits["train"]
    validation = head(prepared.splits["validation"], batch_size)
    config = make_config(epochs, batch_size)
    text = train.columns["text"]
    ids, lengths = text.padded(), text.lengths.astype(np.int64)
    labels = np.asarray(train.columns["label"], dtype=np.int64)
    vocab_size = len(prepared.metadata["text"]["vocab"])
    classes = len(prepared.metadata["label"]["vocab"])
    steps = epochs * train.num_batches(batch_size, fold_single_row=True)
    rows = epochs * len(train)

    def hand(batch_max: bool, seed: int, count: int = steps, subset: int | None = None):
        cut = slice(None, subset)
        return hand_written_run(ids[cut], lengths[cut], labels[cut], vocab_size, classes, batch_size, count, seed,
                                batch_max)

    # warm-up: allocator, thread pools, first-call paths of every loop
    framework_run(make_config(1, batch_size), head(train, 20 * batch_size), validation, prepared.metadata)
    hand(True, 0, 20, 20 * batch_size)
    hand(False, 0, 20, 20 * batch_size)

    grouped = make_config(epochs, batch_size, group_by_length=True)
    runs: dict[str, list[tuple[float, float]]] = {"framework": [], "framework_grouped": [], "hand_batch_max": [],
                                                  "hand_dataset_max": []}
    loops = [("framework", lambda r: framework_run(config, train, validation, prepared.metadata)),
             ("framework_grouped", lambda r: framework_run(grouped, train, validation, prepared.metadata)),
             ("hand_batch_max", lambda r: hand(True, r)),
             ("hand_dataset_max", lambda r: hand(False, r))]
    for repeat in range(repeats):  # interleaved, rotating which goes first, so drift hits all alike
        shift = repeat % len(loops)
        for name, run in loops[shift:] + loops[:shift]:
            runs[name].append(run(repeat))
    seconds = {name: statistics.median(s for s, _ in results) for name, results in runs.items()}
    return {"steps": steps, "rows": rows, "seconds": seconds, "runs": runs,
            "rates": {name: rows / value for name, value in seconds.items()},
            "losses": {name: results[-1][1] for name, results in runs.items()},
            "dataset_max": int(ids.shape[1]), "mean_length": float(lengths.mean())}


# -- report ----------------------------------------------------------------------------------------
def report(rows: int, tokens: dict, train: dict, args) -> None:
    rates = train["rates"]
    ratio = rates["framework"] / rates["hand_batch_max"]
    lines = [
        "",
        f"ECD text benchmark: {rows:,} texts, {len(CLASSES)} classes, parallel_cnn, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs",
        f"training: batch {args.batch_size}, {args.epochs} epochs = {train['steps']} steps over "
        f"{train['rows'] // args.epochs:,} rows; lengths: mean {train['mean_length']:.1f} tokens, dataset max "
        f"{train['dataset_max']}; median of {args.repeats} interleaved repeats",
        "",
        f"{'measure':<52}{'value':>14}  {'target':<14}{'result':>6}",
        "-" * 88,
        f"{'tokenization, plain Python (rows/s)':<52}{rows / tokens['plain']:>14,.0f}  {'baseline':<14}",
        f"{'tokenization + vocabulary + split, framework (rows/s)':<52}{rows / tokens['framework']:>14,.0f}",
        f"{'tokenization, framework / plain Python':<52}{tokens['plain'] / tokens['framework']:>14.2f}",
        f"{'training, hand-written, batch-max padding (rows/s)':<52}{rates['hand_batch_max']:>14,.0f}  "
        f"{'baseline':<14}",
        f"{'training, framework Trainer (rows/s)':<52}{rates['framework']:>14,.0f}",
        f"{'training, framework / hand-written':<52}{ratio:>14.3f}  "
        f"{'>= ' + str(TRAINING_TARGET_RATIO) + 'x':<14}{'PASS' if ratio >= TRAINING_TARGET_RATIO else 'FAIL':>6}",
        f"{'training, hand-written, dataset-max padding (rows/s)':<52}{rates['hand_dataset_max']:>14,.0f}",
        f"{'padding: batch-max / dataset-max (hand-written)':<52}"
        f"{rates['hand_batch_max'] / rates['hand_dataset_max']:>14.2f}",
        f"{'padding: framework / hand-written dataset-max':<52}{rates['framework'] / rates['hand_dataset_max']:>14.2f}",
        f"{'training, framework, group_by_length (rows/s)':<52}{rates['framework_grouped']:>14,.0f}",
        f"{'group_by_length: grouped / framework':<52}{rates['framework_grouped'] / rates['framework']:>14.2f}",
        "last-epoch training loss: " + ", ".join(f"{name} {loss:.4f}" for name, loss in train["losses"].items())
        + "  (same network: should be close)",
        "runs (s): " + "; ".join(f"{name} " + ", ".join(f"{s:.2f}" for s, _ in results)
                                 for name, results in train["runs"].items()),
    ]
    print("\n".join(lines))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    training_arguments(parser, rows=50_000, repeats=3)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    frame = make_frame(args.rows)
    print(f"generated {len(frame):,} texts; tokenizing ...", file=sys.stderr)
    tokens = time_tokenization(frame, make_config(args.epochs, args.batch_size), args.repeats)
    print("training ...", file=sys.stderr)
    train = time_training(tokens["prepared"], args.epochs, args.batch_size, args.repeats)
    report(args.rows, tokens, train, args)


if __name__ == "__main__":
    main()
