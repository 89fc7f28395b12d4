"""DeepSpeed ZeRO: optimizer state (stage 1), gradients (2) and weights (3) partitioned across processes,
optionally offloaded to CPU memory or NVMe.

The trainer's own optimizer is handed to DeepSpeed (a client optimizer: torch's, so no fused op is
compiled; DeepSpeedCPUAdam when the optimizer is offloaded, FusedAdam on request), and the trainer's
schedule keeps setting each group's rate before every step. Accumulation boundaries are the trainer's
too: it tells the engine which batch ends a step, so a short last group of an epoch steps as it does
on one process. At the end the weights are consolidated into the plain module, fp32 master copies
included, so saving and `Model.load` work exactly as after local training.
"""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import shutil
from pathlib import Path

import torch

from framework import atomic
from framework.errors import FrameworkError
from framework.training import checkpoints, distributed
from framework.training.strategies.config import owned
from framework.training.strategies.local import LocalStrategy
from framework.training.strategies.shards import Shards

TAG = "state"  # DeepSpeed's name for the one checkpoint each of our checkpoint directories holds
QUIET = 1 << 62  # steps_per_print: DeepSpeed's own step logs would interleave with the progress bar


def require_deepspeed() -> None:
    if importlib.util.find_spec("deepspeed") is None:
        raise FrameworkError("trainer.strategy deepspeed needs the deepspeed package: pip install "
                             "framework[deepspeed]")


def deepspeed_config(settings: dict, world_size: int) -> dict:
    """The DeepSpeed config: the raw one given (if any) completed by the trainer's settings, which it was
    checked to agree with when the config resolved."""
    section = settings["deepspeed"]
    config = copy.deepcopy(section["config"] or {})
    for path, _, value in owned(settings):
        node = config
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    per_step = settings["batch_size"] * settings["gradient_accumulation_steps"] * world_size
    given = config.get("train_batch_size", "auto")
    if given != "auto" and given != per_step:
        raise FrameworkError(f"trainer.deepspeed: train_batch_size {given} in the raw DeepSpeed config disagrees with "
                             f"trainer.batch_size {settings['batch_size']} x gradient_accumulation_steps "
                             f"{settings['gradient_accumulation_steps']} x {world_size} processes = {per_step}")
    config["train_batch_size"] = per_step
    zero = config.setdefault("zero_optimization", {})
    zero["stage"] = section["zero_stage"]
    for key in ("offload_optimizer", "offload_param"):
        if section[key] is not None:
            target = {"device": section[key], "pin_memory": torch.cuda.is_available()}
            if section[key] == "nvme":
                target["nvme_path"] = section["nvme_path"]
            zero[key] = {**zero.get(key, {}), **target}
    config.setdefault("steps_per_print", QUIET)
    config.setdefault("zero_allow_untested_optimizer", True)  # the client optimizer is any of trainer.optimizer's
    return config


def client_optimizer(optimizer: torch.optim.Optimizer, settings: dict) -> torch.optim.Optimizer:
    """The optimizer DeepSpeed steps: the trainer's, or DeepSpeed's own Adam over the same groups where it is
    needed (an offloaded Adam runs on the CPU: DeepSpeedCPUAdam) or asked for (FusedAdam)."""
    section, kind = settings["deepspeed"], settings["optimizer"]["type"]
    offloaded = section["offload_optimizer"] is not None
    if kind not in ("adam", "adamw") or not (offloaded or section["fused_optimizer"]):
        return optimizer
    options = {"lr": settings["learning_rate"], "betas": tuple(settings["optimizer"]["betas"]),
               "eps": settings["optimizer"]["eps"], "weight_decay": settings["weight_decay"],
               "adamw_mode": kind == "adamw"}
    if offloaded:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(optimizer.param_groups, **options)
    from deepspeed.ops.adam import FusedAdam

    return FusedAdam(optimizer.param_groups, **options)


def skip_cpu_shm_op() -> None:
    """On the CPU accelerator DeepSpeed compiles a shared-memory all-reduce (C++, minutes on a small
    machine) when its comm backend starts, for inference tensor parallelism only: ZeRO training never
    calls it, and where the CPU lacks the vector instructions it assumes, its peers hang at startup. Marking
    it incompatible makes DeepSpeed keep the process group's own (gloo) collectives."""
    from deepspeed import ops
    from deepspeed.accelerator import get_accelerator

    if get_accelerator().device_name() != "cpu":
        return
    builder = get_accelerator().create_op_builder("ShareMemCommBuilder")
    if builder is not None:
        ops.__compatible_ops__[builder.NAME] = False


class DeepSpeedStrategy(Shards, LocalStrategy):
    def __init__(self, settings: dict, device: torch.device):
        require_deepspeed()
        LocalStrategy.__init__(self, settings, device)
        self.scaler = None  # fp16 loss scaling is DeepSpeed's
        distributed.setup(settings)  # a no-op when the launch already joined the processes
        Shards.__init__(self)
        self.stage = settings["deepspeed"]["zero_stage"]
        self.config = deepspeed_config(settings, self.world_size)
        self.engine = None
        self.dtypes: dict[str, torch.dtype] = {}

    # -- wrapping -----------------------------------------------------------------------------
    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer):
        import deepspeed

        skip_cpu_shm_op()
        # DeepSpeed casts the whole module to bf16/fp16; the dtypes are put back when training ends
        self.dtypes = {name: t.dtype for name, t in [*model.named_parameters(), *model.named_buffers()]}
        self.engine, engine_optimizer, _, _ = deepspeed.initialize(
            model=model, optimizer=client_optimizer(optimizer, self.settings), config=self.config)
        return self.engine, engine_optimizer

    def accumulating(self, boundary: bool):
        self.engine.set_gradient_accumulation_boundary(boundary)
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor, boundary: bool) -> None:
        self.engine.backward(loss, scale_wrt_gas=False)  # the trainer divided it by its accumulation already

    def step(self, model: torch.nn.Module, optimizer) -> None:
        self.engine.step()  # clips to gradient_clipping, steps, zeroes the gradients

    def zero_grad(self, optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)

    # -- whole weights ------------------------------------------------------------------------
    def _gathered(self, model: torch.nn.Module):
        if self.stage != 3:
            return contextlib.nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None)

    def _full_values(self, model: torch.nn.Module, outlive_gather: bool) -> dict[str, torch.Tensor]:
        """Every parameter whole, trained ones from the fp32 master copy (a collective under ZeRO-3: every
        process calls it, in the same parameter order). A tensor is copied only where it must be: a dtype
        change copies anyway, and a gathered ZeRO-3 weight is freed on leaving the gather, so one that must
        `outlive_gather` is cloned; a frozen weight already in its dtype is otherwise used as it is."""
        from deepspeed.utils import safe_get_full_fp32_param

        values = {}
        for name, param in model.named_parameters():
            master = safe_get_full_fp32_param(param) if param.requires_grad else None
            source = (master if master is not None else param.data).detach()
            value = source.to(self.dtypes[name])
            if outlive_gather and self.stage == 3 and value.data_ptr() == param.data.data_ptr():
                value = value.clone()
            values[name] = value
        return values

    @contextlib.contextmanager
    def full_weights(self, model: torch.nn.Module):
        if self.engine is None:  # finished: the module is plain again
            yield
            return
        with self._gathered(model):
            values = self._full_values(model, outlive_gather=False)  # put back before the gather ends
            params = dict(model.named_parameters())
            kept = {name: params[name].data for name in values}
            for name, value in values.items():
                params[name].data = value
            try:
                yield
            finally:
                for name, data in kept.items():
                    params[name].data = data

    def finish(self, model: torch.nn.Module) -> None:
        if self.engine is None:
            return
        with self._gathered(model):
            values = self._full_values(model, outlive_gather=True)
        self.engine.destroy()  # removes ZeRO-3's hooks: the module runs as a plain one again
        self.engine = None
        for name, param in model.named_parameters():
            param.data = values[name]
        for name, buffer in model.named_buffers():
            buffer.data = buffer.data.to(self.dtypes.get(name, buffer.dtype))

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, directory: Path, model, optimizer, state: dict) -> None:
        """Every process writes its partition into one staging directory beside `directory`; the main one
        adds the trainer state and swaps it in whole (a kill at any point leaves the previous checkpoint)."""
        staging = directory.with_name(f".{directory.name}.staging")
        if self.is_main and staging.exists():
            shutil.rmtree(staging)  # left by a killed run
        distributed.barrier()
        self.engine.save_checkpoint(str(staging / "deepspeed"), tag=TAG, save_latest=False)
        torch.save(_rng_state(), staging / f"rng_{self.rank}.pt")
        distributed.barrier()
        if self.is_main:
            (staging / "trainer_state.json").write_text(json.dumps(state))
            with atomic.atomic_dir(directory) as tmp:
                staging.replace(tmp)  # onto the empty directory atomic_dir made
        distributed.barrier()

    def load_checkpoint(self, directory: Path, model, optimizer) -> dict:
        if not (directory / "deepspeed" / TAG).is_dir():
            raise FrameworkError(f"checkpoint '{directory}' was not written by the deepspeed strategy; resume it "
                                 "with the strategy it was trained with")
        path, _ = self.engine.load_checkpoint(str(directory / "deepspeed"), tag=TAG, load_lr_scheduler_states=False)
        if path is None:
            raise FrameworkError(f"checkpoint '{directory}' could not be loaded by DeepSpeed")
        rng = directory / f"rng_{self.rank}.pt"
        if rng.is_file():  # a run resumed on another number of processes keeps its own RNG
            _set_rng_state(torch.load(rng, weights_only=True))
        state = json.loads((directory / "trainer_state.json").read_text())
        if not self.is_main:  # the saved running sums are all processes' together: counted once, on the main one
            state["loss_sum"], state["output_loss_sums"] = 0.0, {}
        return state


def _rng_state() -> dict:
    return {"cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(saved: dict) -> None:
    torch.set_rng_state(saved["cpu_rng"])
    if saved["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
