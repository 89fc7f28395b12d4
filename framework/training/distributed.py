"""The processes of a run: who they are, how they meet, and what only one of them does.

Launchers (torchrun, `deepspeed`, `framework train --num-gpus N`) start every process with RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in its environment; `setup` joins them into one
process group (gloo on CPUs, nccl on GPUs) before any model or data is touched, so each process can
pick its GPU first and the run directory can be chosen once. A single process with a distributed
strategy gets a group of one, from an in-memory store: no port to find.

A group the framework joined is destroyed when the process exits (`leave_at_exit`): one that exits
with gloo's worker threads still alive can abort in interpreter shutdown (SIGABRT, "terminate called
without an active exception"), which the launcher reports as a failed run. It lasts the process rather
than one training because a group joined again meets the launcher's store holding the first one's keys,
and DeepSpeed's cached subgroups. A group the caller set up is theirs.

torch.distributed's process group is the state here (with whether a training failed); these functions
read it.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from framework.errors import FrameworkError

LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_world_size() -> int:
    """The processes a launcher started (1 when none did)."""
    value = os.environ.get("WORLD_SIZE", "1")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if initialized() else 1


def is_main() -> bool:
    """Whether this process writes the run's files, logs and progress bar."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


_failed = False  # a training in this process raised while it had peers, which may wait in a collective


@contextlib.contextmanager
def joined(settings: dict):
    """The processes joined for one training (or several: the group lasts the process)."""
    global _failed
    try:
        yield setup(settings)
    except BaseException:
        _failed = _failed or world_size() > 1
        raise


def leave_at_exit() -> None:
    """Destroys the group the framework joined while the interpreter is still whole. After a failure it is
    left to the launcher, which stops every process: destroying waits on the queued collectives."""
    if initialized() and not _failed:
        leave()


def leave() -> None:
    """Destroys the group; through DeepSpeed when it is in use, which also drops the subgroups it keeps (a
    training that joins again would otherwise meet groups torch no longer knows)."""
    deepspeed_comm = sys.modules.get("deepspeed.comm.comm")
    if deepspeed_comm is not None and deepspeed_comm.is_initialized():
        deepspeed_comm.destroy_process_group()
    else:
        dist.destroy_process_group()


def setup(settings: dict) -> bool:
    """Joins the launched processes before anything else runs; checks the strategy fits the launch.
    Returns whether this call created the group.

    On a GPU each process takes the GPU numbered by its LOCAL_RANK, so `cuda` means its own GPU.
    """
    size, strategy = launched_world_size(), settings["strategy"]
    if size > 1 and strategy == "local":
        raise FrameworkError(f"{size} processes were launched but trainer.strategy is 'local', so each would train "
                             "its own copy; set trainer.strategy to ddp or deepspeed, or launch one process")
    if strategy == "local" or initialized():
        return False
    missing = [name for name in LAUNCH_ENV if name not in os.environ]
    if size > 1 and missing:
        raise FrameworkError(f"WORLD_SIZE is {size} but the launcher did not set {', '.join(missing)}; start the "
                             "processes with torchrun, deepspeed or `framework train --num-gpus N`")
    on_gpu = _uses_cuda(settings["device"])
    if on_gpu:
        available = torch.cuda.device_count()
        if local_rank() >= available:
            per_node = os.environ.get("LOCAL_WORLD_SIZE", str(local_rank() + 1))
            raise FrameworkError(f"{per_node} processes were launched on this machine but it has {available} GPU"
                                 f"{'' if available == 1 else 's'}; launch at most {available} per machine "
                                 "(--nproc_per_node / --num_gpus), or set trainer.device: cpu")
        torch.cuda.set_device(local_rank())
    backend = "nccl" if on_gpu else "gloo"
    if size == 1 and missing:
        os.environ.setdefault("LOCAL_RANK", "0")  # DeepSpeed refuses to start without it, launched or not
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    else:
        dist.init_process_group(backend, rank=int(os.environ["RANK"]), world_size=size)
    atexit.register(leave_at_exit)
    return True


def _uses_cuda(device: str) -> bool:
    if device == "auto":
        return torch.cuda.is_available()
    return device.startswith("cuda")


def device_for(device: torch.device) -> torch.device:
    """This process's own GPU when the run is on cuda (cuda:LOCAL_RANK), else the device as given."""
    if device.type == "cuda" and device.index is None and initialized():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def opened_by_main(open_run: Callable[[], Path | None]) -> Path | None:
    """The run directory, opened by the main process alone and shared with the others (each opening
    its own would number several directories for one run)."""
    if world_size() == 1:
        return open_run()
    shared = [open_run() if is_main() else None]
    dist.broadcast_object_list(shared, src=0)
    return shared[0]


def all_sum(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each tensor summed over the processes, in one collective (a host sync point)."""
    if world_size() == 1 or not tensors:
        return tensors
    flat = torch.stack([t.detach().double().reshape(()) for t in tensors])
    on = flat.device
    if dist.get_backend() == "gloo" and on.type != "cpu":
        flat = flat.cpu()
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return list(flat.to(on).unbind())


def all_true(flag: bool, device: torch.device) -> bool:
    """Whether every process's flag is true: the processes decide together so they stay in step."""
    if world_size() == 1:
        return flag
    value = torch.tensor([1 if flag else 0], device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def launch(processes: int, settings: dict, argv: list[str]) -> None:
    """Runs this same command in `processes` processes under the DeepSpeed launcher and waits for them.

    `--num-gpus` is left out of what each process is given, so none of them launches again.
    """
    import socket
    import subprocess
    import sys

    import importlib.util

    if processes < 1:
        raise FrameworkError(f"--num-gpus must be at least 1, got {processes}")
    if importlib.util.find_spec("deepspeed") is None:
        raise FrameworkError("--num-gpus starts the processes with the DeepSpeed launcher: pip install "
                             "framework[deepspeed]")
    if launched_world_size() > 1:
        raise FrameworkError("--num-gpus starts the processes itself; this command already runs under a launcher")
    if settings["strategy"] == "local":
        raise FrameworkError(f"--num-gpus {processes} needs trainer.strategy ddp or deepspeed; it is 'local'")
    if _uses_cuda(settings["device"]) and processes > torch.cuda.device_count():
        raise FrameworkError(f"--num-gpus {processes} but this machine has {torch.cuda.device_count()} GPUs")
    with socket.socket() as probe:  # a free port for the processes to meet on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", str(processes), "--master_port",
               str(port), "--no_local_rank", "--module", "framework", *_without_num_gpus(argv)]
    code = subprocess.run(command, check=False).returncode
    if code:
        raise FrameworkError(f"the {processes} training processes ended with exit status {code} (their errors are "
                             "printed above)")


def _without_num_gpus(argv: list[str]) -> list[str]:
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--num-gpus":
            skip = True
        elif not arg.startswith("--num-gpus="):
            kept.append(arg)
    return kept
