"""Benchmark: tabular ECD preprocessing, training throughput and CLI start-up, against targets.

Run by hand: `python benchmarks/ecd_tabular.py` (options: --rows, --epochs, --repeats, --threads,
--batch-size, --no-progress-bar). It generates a mixed table in memory and measures, in one run:

1. preprocessing: `prepare_training` with the cache off (target: 200k rows in under 3 s), and the
   cache hit (a second call with the cache on);
2. training: the framework's Trainer on the prepared arrays against a hand-written PyTorch loop of
   the same network (same encoders, combiner, decoder, loss, optimizer, batch size and number of
   steps) over the same numpy arrays, shuffled each epoch (target: >= 0.9x the hand-written rows/s);
3. `framework --help` wall time in a subprocess (target: under 0.5 s).

The baseline (the hand-written loop) is measured in the same run, interleaved with the framework's
repeats, on the same thread count; medians are reported.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from common import framework_run, head, optimizer_step, timed_steps, training_arguments
from framework.config import load_config
from framework.data.pipeline import prepare_training

ROOT = Path(__file__).resolve().parent.parent

PREPROCESS_TARGET_S = 3.0
TRAINING_TARGET_RATIO = 0.9
HELP_TARGET_S = 0.5

NUMBERS = ["num_0", "num_1", "num_2", "num_3", "num_4"]
CATEGORIES = {"cat_10": 10, "cat_100": 100, "cat_1000": 1000, "cat_3000": 3000}
BINARIES = ["bin_bool", "bin_yes_no"]


# -- data ------------------------------------------------------------------------------------------
def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """Numbers with ~5% missing, string categories of 10 to 3,000 labels (some missing), two binary
    columns (bool and yes/no text) and a binary target that depends on several of them."""
    rng = np.random.default_rng(seed)
    frame = {}
    signal = np.zeros(rows)
    for index, name in enumerate(NUMBERS):
        values = rng.normal(loc=index, scale=1.0 + index, size=rows)
        signal += values / (1.0 + index) * (1 if index % 2 else -1)
        values[rng.random(rows) < 0.05] = np.nan
        frame[name] = values
    for name, size in CATEGORIES.items():
        labels = np.array([f"{name}_{i}" for i in range(size)], dtype=object)
        popularity = 1.0 / np.arange(1, size + 1)  # Zipf-like: a few common labels, a long tail
        codes = rng.choice(size, size=rows, p=popularity / popularity.sum())
        signal += np.where(codes % 3 == 0, 0.7, -0.3)
        column = labels[codes]
        column[rng.random(rows) < 0.02] = None
        frame[name] = column
    flag = rng.random(rows) < 0.4
    frame["bin_bool"] = flag
    frame["bin_yes_no"] = np.where(rng.random(rows) < 0.5, "yes", "no")
    signal += np.where(flag, 0.8, -0.2)
    frame["target"] = (signal + rng.normal(scale=1.0, size=rows)) > np.median(signal)
    return pd.DataFrame(frame)


def make_config(epochs: int, batch_size: int, progress_bar: bool, cache: bool) -> dict:
    return load_config({
        "input_features": ([{"name": n, "type": "number"} for n in NUMBERS]
                           + [{"name": n, "type": "category"} for n in CATEGORIES]
                           + [{"name": n, "type": "binary"} for n in BINARIES]),
        "output_features": [{"name": "target", "type": "binary"}],
        "combiner": {"type": "concat", "num_fc_layers": 1, "output_size": 128},
        "trainer": {"epochs": epochs, "batch_size": batch_size, "early_stop": 0, "learning_rate": 1e-3,
                    "optimizer": {"type": "adam"}, "progress_bar": progress_bar, "device": "cpu"},
        "preprocessing": {"cache": cache},
        "seed": 42,
    })


# -- 1. preprocessing ------------------------------------------------------------------------------
def time_preprocessing(frame: pd.DataFrame, repeats: int) -> dict:
    cache_dir = Path(tempfile.mkdtemp(prefix="ecd_bench_cache_"))
    try:
        uncached = make_config(1, 128, False, cache=False)
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            prepared = prepare_training(uncached, frame, cache_dir=cache_dir)
            seconds.append(time.perf_counter() - start)
        cached = make_config(1, 128, False, cache=True)
        start = time.perf_counter()
        prepare_training(cached, frame, cache_dir=cache_dir)
        miss = time.perf_counter() - start
        start = time.perf_counter()
        hit = prepare_training(cached, frame, cache_dir=cache_dir)
        hit_seconds = time.perf_counter() - start
        if not hit.cache_hit:
            raise RuntimeError("the second call with the cache on missed the cache")
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    return {"seconds": statistics.median(seconds), "all": seconds, "miss": miss, "hit": hit_seconds,
            "prepared": prepared}


# -- 2. training -----------------------------------------------------------------------------------
class HandWritten(nn.Module):
    """The network the config builds, written out: an embedding per category (xavier-initialised,
    width min(32, vocabulary)), numbers and binaries passed through, concatenated in the config's
    order, one fc layer of 128 with ReLU, one logit."""

    def __init__(self, inputs: list[str], vocab_sizes: dict[str, int], embedding_size: int = 32):
        super().__init__()
        self.inputs = inputs
        self.embeddings = nn.ModuleDict({name: nn.Embedding(size, min(embedding_size, size))
                                         for name, size in vocab_sizes.items()})
        for embedding in self.embeddings.values():
            nn.init.xavier_uniform_(embedding.weight)
        width = sum(e.embedding_dim for e in self.embeddings.values()) + len(inputs) - len(vocab_sizes)
        self.fc = nn.Sequential(nn.Linear(width, 128), nn.ReLU())
        self.out = nn.Linear(128, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = [self.embeddings[name](batch[name]) if name in self.embeddings else batch[name].unsqueeze(-1)
                 for name in self.inputs]
        return self.out(self.fc(torch.cat(parts, dim=-1))).squeeze(-1)


def hand_written_run(columns: dict[str, np.ndarray], vocab_sizes: dict[str, int], batch_size: int,
                     steps: int, seed: int) -> tuple[float, float]:
    """Seconds for `steps` optimizer steps of an idiomatic PyTorch loop (tensors made once, each batch an
    index of every column), and the last epoch's mean loss."""
    torch.manual_seed(seed)
    model = HandWritten(NUMBERS + list(CATEGORIES) + BINARIES, vocab_sizes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    tensors = {name: torch.from_numpy(array) for name, array in columns.items()}
    model.train()

    def step(index: torch.Tensor) -> torch.Tensor:
        batch = {name: tensor[index] for name, tensor in tensors.items()}
        return optimizer_step(loss_fn(model(batch), batch["target"]), optimizer)

    return timed_steps(step, len(tensors["target"]), batch_size, steps, seed)


def time_training(prepared, epochs: int, batch_size: int, repeats: int, progress_bar: bool) -> dict:
    train = prepared.splits["train"]
    validation = head(prepared.splits["validation"], 1024)
    config = make_config(epochs, batch_size, progress_bar, cache=False)
    vocab_sizes = {name: len(prepared.metadata[name]["vocab"]) for name in CATEGORIES}
    steps = epochs * train.num_batches(batch_size)
    rows = epochs * len(train)  # rows per run; both loops take the same steps, short last batches included

    # warm-up: allocator, thread pools, first-call paths of both loops
    framework_run(make_config(1, batch_size, False, cache=False), head(train, 20 * batch_size), validation,
                  prepared.metadata)
    hand_written_run(head(train, 20 * batch_size).columns, vocab_sizes, batch_size, 20, seed=0)

    framework_runs, hand_runs = [], []
    for repeat in range(repeats):  # interleaved, alternating which goes first, so drift hits both alike
        runs = [lambda: framework_runs.append(framework_run(config, train, validation, prepared.metadata)),
                lambda: hand_runs.append(hand_written_run(train.columns, vocab_sizes, batch_size, steps, repeat))]
        for run in runs if repeat % 2 == 0 else runs[::-1]:
            run()
    framework_seconds, hand_seconds = [s for s, _ in framework_runs], [s for s, _ in hand_runs]
    framework_rate = rows / statistics.median(framework_seconds)
    hand_rate = rows / statistics.median(hand_seconds)
    return {"steps": steps, "rows": rows, "framework": framework_seconds, "hand": hand_seconds,
            "framework_rate": framework_rate, "hand_rate": hand_rate, "ratio": framework_rate / hand_rate,
            "best_ratio": min(hand_seconds) / min(framework_seconds),
            "framework_loss": framework_runs[-1][1], "hand_loss": hand_runs[-1][1]}


# -- 3. CLI start-up -------------------------------------------------------------------------------
def time_help(repeats: int) -> dict:
    script = Path(sys.executable).parent / "framework"
    if (ROOT / "framework" / "cli.py").is_file() and script.is_file():
        command, label = [str(script), "--help"], "framework --help"
    elif (ROOT / "framework" / "cli.py").is_file():
        command, label = [sys.executable, "-m", "framework", "--help"], "python -m framework --help"
    else:
        command, label = [sys.executable, "-c", "import framework"], "python -c 'import framework' (no cli.py yet)"
    seconds = []
    for _ in range(repeats + 1):  # the first run warms the OS file cache and is dropped
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        seconds.append(time.perf_counter() - start)
    return {"label": label, "seconds": statistics.median(seconds[1:])}


# -- report ----------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(rows: int, prep: dict, train: dict, cli: dict, args) -> None:
    prep_ok = prep["seconds"] * 200_000 / rows < PREPROCESS_TARGET_S
    lines = [
        "",
        f"ECD tabular benchmark: {rows:,} rows x {len(NUMBERS) + len(CATEGORIES) + len(BINARIES) + 1} columns, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs",
        f"training: batch {args.batch_size}, {args.epochs} epochs = {train['steps']} steps over "
        f"{train['rows'] // args.epochs:,} training rows, progress bar {'on' if args.progress_bar else 'off'}, "
        f"median of {args.repeats} interleaved repeats",
        "",
        f"{'measure':<44}{'value':>16}  {'target':<22}{'result':>6}",
        "-" * 90,
        f"{'preprocessing, cache off (s)':<44}{prep['seconds']:>16.2f}  "
        f"{'< 3 s per 200k rows':<22}{verdict(prep_ok):>6}",
        f"{'preprocessing, cache off (rows/s)':<44}{rows / prep['seconds']:>16,.0f}",
        f"{'preprocessing, cache on, miss + write (s)':<44}{prep['miss']:>16.2f}",
        f"{'preprocessing, cache on, hit (s)':<44}{prep['hit']:>16.2f}  "
        f"{'(x' + format(prep['seconds'] / prep['hit'], '.1f') + ' faster than off)':<22}",
        f"{'training, hand-written PyTorch (rows/s)':<44}{train['hand_rate']:>16,.0f}  {'baseline':<22}",
        f"{'training, framework Trainer (rows/s)':<44}{train['framework_rate']:>16,.0f}",
        f"{'training, framework / hand-written':<44}{train['ratio']:>16.3f}  "
        f"{'>= ' + str(TRAINING_TARGET_RATIO) + 'x':<22}{verdict(train['ratio'] >= TRAINING_TARGET_RATIO):>6}",
        f"{'  (best run / best run)':<44}{train['best_ratio']:>16.3f}",
        f"{'  last-epoch training loss, framework / hand':<44}{train['framework_loss']:>8.4f}{train['hand_loss']:>8.4f}"
        "  (same network: should be close)",
        f"{cli['label'] + ' (s)':<44}{cli['seconds']:>16.3f}  {'< 0.5 s':<22}"
        f"{verdict(cli['seconds'] < HELP_TARGET_S):>6}",
        "",
        "runs (s): preprocessing " + ", ".join(f"{s:.2f}" for s in prep["all"])
        + "; framework " + ", ".join(f"{s:.2f}" for s in train["framework"])
        + "; hand-written " + ", ".join(f"{s:.2f}" for s in train["hand"]),
    ]
    print("\n".join(lines))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    training_arguments(parser, rows=200_000, repeats=9, threads_help="torch.set_num_threads for both loops")
    parser.add_argument("--no-progress-bar", dest="progress_bar", action="store_false",
                        help="train the framework with trainer.progress_bar false (default: on, as users have it)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    frame = make_frame(args.rows)
    print(f"generated {len(frame):,} rows; preprocessing ...", file=sys.stderr)
    prep = time_preprocessing(frame, args.repeats)
    print("training (the framework's progress bars follow) ...", file=sys.stderr)
    train = time_training(prep["prepared"], args.epochs, args.batch_size, args.repeats, args.progress_bar)
    cli = time_help(5)
    report(args.rows, prep, train, cli, args)


if __name__ == "__main__":
    main()
