"""Benchmark: image training throughput (stacked_cnn) against hand-written PyTorch, and the peak memory of
images decoded per batch (lazy) against images held in memory.

Run by hand: `python benchmarks/ecd_image.py` (options: --images, --epochs, --repeats, --threads,
--batch-size, --workers, --memory-images, --memory-side). The images are Fashion-MNIST PNGs written by
examples/fashion_mnist/prepare.py when Debian's dataset-fashion-mnist is installed, else synthetic
28x28 PNGs of the same size and kind (ten classes of stripes). In one run it measures:

1. training from memory: the framework's Trainer on the prepared uint8 pixels against a hand-written
   loop of the same network (stacked_cnn of 16/32/64 filters with batch norm, max-pool and global
   average pooling, an fc layer of 128, the concat combiner's fc layer of 128, a linear classifier;
   Adam, same batch size and steps) indexing the same pixels as one uint8 tensor. Target >= 0.8x.
2. training from files: the Trainer with `in_memory: false` (paths kept, each batch decoded ahead by
   its thread pool) against the same hand-written network fed by a torch DataLoader whose `--workers`
   processes decode the same PNG files with Pillow, shuffled each epoch.
3. peak memory: a fresh process per mode preprocesses `--memory-images` PNGs resized to
   `--memory-side` pixels and trains one epoch, with `in_memory: true`, and with `in_memory: auto` under
   a `max_in_memory_mb` budget of a quarter of the decoded size (so the split stays lazy); each
   reports its peak RSS (ru_maxrss), beside a process that only imports torch and the framework.

The framework's runs also validate on 256 rows each epoch (the Trainer always does); the hand-written
loops do not. Both sides are interleaved, alternating which goes first; medians are reported.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
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

from common import framework_run, head, optimizer_step, peak_memory_mb, timed_steps
from framework.config import load_config
from framework.data.pipeline import prepare_training

ROOT = Path(__file__).resolve().parent.parent
TRAINING_TARGET_RATIO = 0.8
FILTERS = (16, 32, 64)


# -- data ------------------------------------------------------------------------------------------
def fashion_prepare():
    path = ROOT / "examples" / "fashion_mnist" / "prepare.py"
    spec = importlib.util.spec_from_file_location("fashion_mnist_prepare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_csv(out: Path, images: int, seed: int = 0) -> Path:
    """28x28 grayscale PNGs of stripes whose angle and period are the class, with noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:28, 0:28]
    rows = []
    for i in range(images):
        label = int(rng.integers(10))
        angle, period = label % 5 * np.pi / 5, 4 + 2 * (label // 5)
        wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period + rng.uniform(0, 6))
        pixels = np.clip(127 + 90 * wave + rng.normal(0, 30, wave.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(out / "images" / f"{i}.png", compress_level=1)
        rows.append({"image_path": f"images/{i}.png", "label": f"class_{label}",
                     "split": "validation" if i % 10 == 0 else "train"})
    pd.DataFrame(rows).to_csv(out / "images.csv", index=False)
    return out / "images.csv"


def image_csv(out: Path, images: int) -> tuple[Path, str]:
    prepare = fashion_prepare()
    if prepare.available():
        return prepare.prepare(out, train=images, test=200), "Fashion-MNIST"
    return synthetic_csv(out, images), "synthetic stripes (apt-get install dataset-fashion-mnist for the real images)"


def make_config(epochs: int, batch_size: int, in_memory, budget_mb: int = 2048, side: int | None = None) -> dict:
    return load_config({
        "input_features": [{"name": "image_path", "type": "image",
                            "preprocessing": {"in_memory": in_memory, "max_in_memory_mb": budget_mb,
                                              "height": side, "width": side},
                            "encoder": {"type": "stacked_cnn", "num_conv_layers": len(FILTERS),
                                        "num_filters": FILTERS[0], "output_size": 128}}],
        "output_features": [{"name": "label", "type": "category"}],
        "trainer": {"epochs": epochs, "batch_size": batch_size, "early_stop": 0, "learning_rate": 1e-3,
                    "progress_bar": False, "device": "cpu"},
        "preprocessing": {"cache": False, "split": {"type": "fixed", "column": "split"}},
        "seed": 42,
    })


# -- the hand-written network and loops ------------------------------------------------------------
class HandWritten(nn.Module):
    """The network the config builds, written out; takes uint8 [B, 1, H, W] as the framework's does."""

    def __init__(self, classes: int):
        super().__init__()
        blocks, channels = [], 1
        for filters in FILTERS:
            blocks += [nn.Conv2d(channels, filters, 3, padding=1, bias=False), nn.BatchNorm2d(filters), nn.ReLU(),
                       nn.MaxPool2d(2)]
            channels = filters
        self.convolutions = nn.Sequential(*blocks)
        self.encoder_fc = nn.Sequential(nn.Linear(channels, 128), nn.ReLU())
        self.combiner_fc = nn.Sequential(nn.Linear(128, 128), nn.ReLU())
        self.classifier = nn.Linear(128, classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.convolutions(pixels.float() / 255.0).mean(dim=(-2, -1))
        return self.classifier(self.combiner_fc(self.encoder_fc(features)))


def _model(classes: int, seed: int) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = HandWritten(classes).train()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def hand_memory_run(pixels: np.ndarray, labels: np.ndarray, classes: int, batch_size: int, steps: int,
                    seed: int) -> tuple[float, float]:
    """An idiomatic loop over one uint8 tensor, each batch an index of it."""
    model, optimizer = _model(classes, seed)
    images, targets = torch.from_numpy(pixels), torch.from_numpy(labels)
    loss_fn = nn.CrossEntropyLoss()

    def step(index: torch.Tensor) -> torch.Tensor:
        return optimizer_step(loss_fn(model(images[index]), targets[index]), optimizer)

    return timed_steps(step, len(targets), batch_size, steps, seed)


class PNGFiles(torch.utils.data.Dataset):
    """One decoded PNG per item, as a tutorial's Dataset reads files."""

    def __init__(self, paths: np.ndarray, labels: np.ndarray):
        self.paths, self.labels = paths, labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        with Image.open(self.paths[index]) as image:
            pixels = np.asarray(image.convert("L"))
        return torch.from_numpy(pixels.copy()).unsqueeze(0), int(self.labels[index])


def hand_files_run(paths: np.ndarray, labels: np.ndarray, classes: int, batch_size: int, steps: int, seed: int,
                   workers: int) -> tuple[float, float]:
    """The same network fed by a DataLoader whose worker processes decode the files (their start-up is
    timed, as the Trainer's thread pool start-up is)."""
    model, optimizer = _model(classes, seed)
    loss_fn = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(PNGFiles(paths, labels), batch_size=batch_size, shuffle=True,
                                         num_workers=workers, generator=torch.Generator().manual_seed(seed))
    start = time.perf_counter()
    done = 0
    while done < steps:
        loss_sum, batches = torch.zeros(()), 0
        for images, targets in loader:
            loss_sum += optimizer_step(loss_fn(model(images), targets), optimizer).detach()
            batches, done = batches + 1, done + 1
            if done == steps:
                break
    return time.perf_counter() - start, loss_sum.item() / batches


# -- 1 and 2. training -----------------------------------------------------------------------------
def interleaved(framework, hand, repeats: int) -> tuple[list, list]:
    framework_runs, hand_runs = [], []
    for repeat in range(repeats):  # alternating which goes first, so drift hits both alike
        runs = [lambda: framework_runs.append(framework()), lambda: hand_runs.append(hand(repeat))]
        for run in runs if repeat % 2 == 0 else runs[::-1]:
            run()
    return framework_runs, hand_runs


def summary(framework_runs: list, hand_runs: list, rows: int) -> dict:
    framework_seconds, hand_seconds = [s for s, _ in framework_runs], [s for s, _ in hand_runs]
    framework_rate, hand_rate = rows / statistics.median(framework_seconds), rows / statistics.median(hand_seconds)
    return {"framework": framework_seconds, "hand": hand_seconds, "framework_rate": framework_rate,
            "hand_rate": hand_rate, "ratio": framework_rate / hand_rate,
            "framework_loss": framework_runs[-1][1], "hand_loss": hand_runs[-1][1]}


def time_training(csv: Path, args) -> dict:
    results = {}
    for mode, in_memory in (("memory", True), ("files", False)):
        config = make_config(args.epochs, args.batch_size, in_memory)
        prepared = prepare_training(config, csv)
        train, validation = prepared.splits["train"], head(prepared.splits["validation"], 256)
        classes = len(prepared.metadata["label"]["vocab"])
        images, labels = train.columns["image_path"], train.columns["label"]
        steps = args.epochs * train.num_batches(args.batch_size)
        if mode == "memory":
            def hand(seed, images=images, labels=labels, steps=steps, classes=classes):
                return hand_memory_run(images, labels, classes, args.batch_size, steps, seed)
        else:
            def hand(seed, paths=images.paths, labels=labels, steps=steps, classes=classes):
                return hand_files_run(paths, labels, classes, args.batch_size, steps, seed, args.workers)

        def framework(config=config, train=train, validation=validation, metadata=prepared.metadata):
            return framework_run(config, train, validation, metadata)

        framework_run(make_config(1, args.batch_size, in_memory), head(train, 10 * args.batch_size), validation,
                      prepared.metadata)  # warm-up: allocator, thread pools, first-call paths of both
        hand(-1)
        print(f"training from {mode} ...", file=sys.stderr)
        results[mode] = summary(*interleaved(framework, hand, args.repeats), args.epochs * len(train))
        results[mode]["rows"] = len(train)
    return results


# -- 3. peak memory --------------------------------------------------------------------------------
def memory_child(args) -> None:
    """One fresh process's peak RSS: `none` imports only; the others preprocess and train one epoch."""
    torch.set_num_threads(args.threads)
    out = {"mode": args.memory_child}
    if args.memory_child != "none":
        in_memory, budget = (True, 2048) if args.memory_child == "in_memory" else ("auto", args.budget_mb)
        config = make_config(1, args.batch_size, in_memory, budget, args.memory_side)
        prepared = prepare_training(config, args.csv)
        column = prepared.splits["train"].columns["image_path"]
        out["lazy"] = type(column).__name__ == "LazyImages"
        start = time.perf_counter()
        framework_run(config, prepared.splits["train"], head(prepared.splits["validation"], 256), prepared.metadata)
        out["epoch_s"] = time.perf_counter() - start
    out["peak_rss_mb"] = peak_memory_mb(torch.device("cpu"))  # peak RSS (ru_maxrss)
    print(json.dumps(out))


def time_memory(csv: Path, args) -> dict:
    images = len(pd.read_csv(csv))
    decoded_mb = images * args.memory_side ** 2 / 2 ** 20
    budget = max(1, int(decoded_mb / 4))
    results = {"images": images, "decoded_mb": decoded_mb, "budget_mb": budget}
    for mode in ("none", "in_memory", "lazy"):
        print(f"peak memory: {mode} ...", file=sys.stderr)
        command = [sys.executable, __file__, "--memory-child", mode, "--csv", str(csv), "--budget-mb", str(budget),
                   "--memory-side", str(args.memory_side), "--threads", str(args.threads),
                   "--batch-size", str(args.batch_size)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


# -- report ----------------------------------------------------------------------------------------
def report(source: str, training: dict, memory: dict, args) -> None:
    lines = ["", f"ECD image benchmark: {source}, {training['memory']['rows']:,} training images of 28x28, "
                 f"stacked_cnn {'/'.join(map(str, FILTERS))} filters, torch {torch.__version__}, "
                 f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs",
             f"training: batch {args.batch_size}, {args.epochs} epochs per run, median of {args.repeats} "
             f"interleaved repeats; DataLoader workers {args.workers}", "",
             f"{'measure':<60}{'value':>12}  {'target':<12}{'result':>6}", "-" * 92]
    for mode, label in (("memory", "from memory (uint8 arrays)"), ("files", "from PNG files")):
        run = training[mode]
        ok = run["ratio"] >= TRAINING_TARGET_RATIO
        baseline = "Trainer in_memory false vs DataLoader" if mode == "files" else "baseline"
        lines += [f"{'training ' + label + ', hand-written (images/s)':<60}{run['hand_rate']:>12,.0f}  {baseline}",
                  f"{'training ' + label + ', framework (images/s)':<60}{run['framework_rate']:>12,.0f}",
                  f"{'  framework / hand-written':<60}{run['ratio']:>12.3f}  "
                  f"{'>= ' + str(TRAINING_TARGET_RATIO) + 'x':<12}{'PASS' if ok else 'FAIL':>6}",
                  f"{'  last-epoch training loss, framework / hand':<60}{run['framework_loss']:>6.3f}"
                  f"{run['hand_loss']:>6.3f}"]
    base, full, lazy = memory["none"], memory["in_memory"], memory["lazy"]
    lines += ["", f"peak memory: {memory['images']:,} images resized to {args.memory_side}x{args.memory_side} "
                  f"({memory['decoded_mb']:.0f} MB decoded); lazy budget max_in_memory_mb {memory['budget_mb']}",
              f"{'peak RSS, import torch + framework only (MB)':<60}{base['peak_rss_mb']:>12,.0f}",
              f"{'peak RSS, in_memory true (MB)':<60}{full['peak_rss_mb']:>12,.0f}  "
              f"epoch {full['epoch_s']:.1f} s",
              f"{'peak RSS, in_memory auto over budget (MB)':<60}{lazy['peak_rss_mb']:>12,.0f}  "
              f"epoch {lazy['epoch_s']:.1f} s, kept as paths: {lazy['lazy']}",
              f"{'  lazy above the import-only process (MB)':<60}{lazy['peak_rss_mb'] - base['peak_rss_mb']:>12,.0f}",
              f"{'  in memory above the import-only process (MB)':<60}{full['peak_rss_mb'] - base['peak_rss_mb']:>12,.0f}",
              "", "runs (s): " + "; ".join(
                  f"{mode} framework " + ", ".join(f"{s:.2f}" for s in training[mode]["framework"])
                  + f"; {mode} hand-written " + ", ".join(f"{s:.2f}" for s in training[mode]["hand"])
                  for mode in ("memory", "files"))]
    print("\n".join(lines))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="training images (a tenth validate)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed training run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each loop (median reported)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads everywhere")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="DataLoader worker processes of the hand-written loop over files")
    parser.add_argument("--memory-images", type=int, default=None, help="images of the memory test (default: "
                                                                        "--images)")
    parser.add_argument("--memory-side", type=int, default=128, help="side the memory test resizes images to")
    parser.add_argument("--memory-child", choices=["none", "in_memory", "lazy"], help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--budget-mb", type=int, default=1, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.memory_child:
        return memory_child(args)
    torch.set_num_threads(args.threads)
    directory = Path(tempfile.mkdtemp(prefix="ecd_image_bench_"))
    try:
        print(f"writing {args.images:,} PNGs under {directory} ...", file=sys.stderr)
        csv, source = image_csv(directory / "train", args.images)
        training = time_training(csv, args)
        memory_csv = csv
        if args.memory_images is not None and args.memory_images != args.images:
            memory_csv, _ = image_csv(directory / "memory", args.memory_images)
        memory = time_memory(memory_csv, args)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    report(source, training, memory, args)


if __name__ == "__main__":
    main()
