"""Benchmark: peak memory per process and step time of one model under each ZeRO stage.

Run by hand: `python benchmarks/deepspeed_memory.py` (options: --processes, --width, --layers,
--batch-size, --steps, --stages, --precision, --offload). For the local strategy and
each ZeRO stage it starts the processes with torchrun, trains the same MLP for --steps optimizer
steps through framework's own strategy (the calls the trainer makes: prepare, backward, step) and
prints one row per process:

- peak memory: on a GPU torch.cuda.max_memory_allocated (tensors only); on a CPU the growth of the
  process's peak resident memory from just before the model is built (ru_maxrss: tensors plus
  allocator and communication buffers), so stages compare on the same footing within a run
  (DeepSpeed's communication buckets are a fixed cost there: the stages separate once the model is
  larger than them, e.g. --width 2048 --layers 12);
- step time: the median over the steps after two warm-up steps.

The local strategy's row (one process) is the baseline of the ratios in the last column.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="processes per ZeRO run (default 2)")
    parser.add_argument("--width", type=int, default=1024, help="hidden width of the MLP")
    parser.add_argument("--layers", type=int, default=8, help="hidden layers of the MLP")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per process per step")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps timed (after 2 warm-up steps)")
    parser.add_argument("--stages", default="0,1,2,3", help="ZeRO stages to run, comma-separated")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32")
    parser.add_argument("--offload", action="store_true", help="also offload the optimizer (and at stage 3 the "
                                                               "weights) to CPU memory (compiles cpu_adam once)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # set for the processes torchrun starts
    return parser.parse_args(argv)


# -- one process of one run -----------------------------------------------------------------------------
def settings_for(args: argparse.Namespace, stage: int | None, device: str) -> dict:
    from framework.config import load_config

    trainer = {"batch_size": args.batch_size, "precision": args.precision, "device": device, "max_grad_norm": 1.0}
    if stage is not None:
        offload = {"offload_optimizer": "cpu", **({"offload_param": "cpu"} if stage == 3 else {})} \
            if args.offload and stage > 0 else {}
        trainer.update(strategy="deepspeed", deepspeed={"zero_stage": stage, **offload})
    config = {"input_features": [{"name": "x", "type": "number"}], "output_features": [{"name": "y", "type": "number"}],
              "trainer": trainer}
    return load_config(config)["trainer"]


def worker(args: argparse.Namespace) -> None:
    import torch
    from torch import nn

    from common import peak_memory_mb  # the driver itself stays free of torch

    torch.set_num_threads(1)
    from framework.training import distributed
    from framework.training.device import autocast, resolve_device
    from framework.training.strategies import build_strategy

    stage = None if args.worker == "local" else int(args.worker)
    device = resolve_device("auto")
    settings = settings_for(args, stage, device.type)
    distributed.setup(settings)
    device = distributed.device_for(device)
    strategy = build_strategy(settings, device)
    before = peak_memory_mb(device)
    torch.manual_seed(0)
    layers = [nn.Linear(args.width, args.width) if i % 2 == 0 else nn.GELU() for i in range(2 * args.layers)]
    model = nn.Sequential(*layers, nn.Linear(args.width, 1)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    forward, optimizer = strategy.prepare(model, optimizer)
    inputs = torch.randn(args.batch_size, args.width, device=device)
    targets = torch.randn(args.batch_size, 1, device=device)
    times = []
    for step in range(args.steps + 2):
        start = time.perf_counter()
        with autocast(settings["precision"], device), strategy.accumulating(True):
            loss = nn.functional.mse_loss(forward(inputs).float(), targets)
        strategy.backward(loss, True)
        strategy.step(model, optimizer)
        strategy.zero_grad(optimizer)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step >= 2:
            times.append(time.perf_counter() - start)
    row = {"strategy": "local" if stage is None else f"zero-{stage}", "rank": strategy.rank,
           "processes": strategy.world_size, "parameters": sum(p.numel() for p in model.parameters()) if stage != 3
           else None, "peak_mb": peak_memory_mb(device) - before,
           "step_ms": 1000 * statistics.median(times), "device": device.type}
    out = Path(os.environ["BENCHMARK_OUT"]) / f"{row['strategy']}-{row['rank']}.json"
    out.write_text(json.dumps(row))


# -- the driver ----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(args: argparse.Namespace, run: str, processes: int, out: Path) -> None:
    passed = [a for a in sys.argv[1:] if not a.startswith("--worker")]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_addr",
               "127.0.0.1", "--master_port", str(free_port()), __file__, *passed, "--worker", run]
    env = {**os.environ, "BENCHMARK_OUT": str(out), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{run} failed:\n{result.stderr[-4000:]}")


def table(rows: list[dict]) -> str:
    baseline = next(r for r in rows if r["strategy"] == "local")
    lines = [f"{'strategy':<9} {'procs':>5} {'rank':>4} {'peak MB':>9} {'x local':>8} {'step ms':>9} {'x local':>8}"]
    for r in rows:
        lines.append(f"{r['strategy']:<9} {r['processes']:>5} {r['rank']:>4} {r['peak_mb']:>9.1f} "
                     f"{r['peak_mb'] / max(baseline['peak_mb'], 1e-9):>8.2f} {r['step_ms']:>9.1f} "
                     f"{r['step_ms'] / baseline['step_ms']:>8.2f}")
    return "\n".join(lines)


def main() -> None:
    args = parse()
    if args.worker:
        worker(args)
        return
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        launch(args, "local", 1, out)
        for stage in (int(s) for s in args.stages.split(",")):
            launch(args, str(stage), args.processes, out)
        rows = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    rows.sort(key=lambda r: (r["strategy"] != "local", r["strategy"], r["rank"]))
    parameters = next(r["parameters"] for r in rows if r["strategy"] == "local")
    print(f"MLP {args.layers} x {args.width} ({parameters / 1e6:.1f}M parameters), Adam, batch {args.batch_size} per "
          f"process, {args.precision}, {rows[0]['device']}{', optimizer offloaded' if args.offload else ''}")
    print(table(rows))


if __name__ == "__main__":
    main()
