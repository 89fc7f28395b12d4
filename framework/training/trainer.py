"""The training loop: one loop, read top to bottom in execution order.

Losses accumulate on the device and are read on a timer for the progress bar and once per epoch
for the statistics; metrics are computed once per evaluation. Every epoch (and every
`steps_per_checkpoint` steps) the latest checkpoint is replaced atomically; the best one is kept
apart. Shuffling is a pure function of (seed, epoch), so a resumed run sees the same batches.
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from framework import atomic
from framework.data.dataset import ArrayDataset
from framework.errors import FrameworkError
from framework.models.ecd import ECD
from framework.models.weights import load_weights, save_weights
from framework.registry import metrics
from framework.training.checkpoints import has_checkpoint, load_checkpoint, save_checkpoint
from framework.training.device import autocast, check_precision
from framework.training.optimizers import build_optimizer
from framework.training.schedule import learning_rate_at

PROGRESS_REFRESH_SECONDS = 0.5


@dataclass
class TrainerState:
    """Everything besides tensors that a resumed run needs; saved as JSON in each checkpoint."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches of the current epoch already trained (mid-epoch checkpoints)
    loss_sum: float = 0.0  # training loss summed over the current epoch's batches so far
    output_loss_sums: dict = field(default_factory=dict)
    best_value: float | None = None
    best_epoch: int | None = None
    evaluations_without_improvement: int = 0
    plateau_evaluations: int = 0
    plateau_factor: float = 1.0
    finished: bool = False
    skipped_batches: int = 0  # batches with a non-finite loss skipped under nonfinite_loss: skip
    statistics: dict = field(default_factory=dict)


def nonfinite_error(value: float, epoch: int, step: int) -> FrameworkError:
    return FrameworkError(f"training loss became {value} in epoch {epoch + 1} (step {step}); lower "
                          "trainer.learning_rate, set trainer.max_grad_norm, use fp32 precision, or set "
                          "trainer.nonfinite_loss: skip to skip such batches")


@contextlib.contextmanager
def out_of_memory_hint(settings: dict):
    """Turns a GPU out-of-memory error into a message naming the settings that reduce memory."""
    try:
        yield
    except torch.OutOfMemoryError:
        raise FrameworkError(
            f"out of GPU memory with trainer.batch_size {settings['batch_size']}: lower it (keep the rows per step "
            "with trainer.effective_batch_size or gradient_accumulation_steps), lower trainer.eval_batch_size, "
            "or use trainer.precision: bf16") from None


class Trainer:
    def __init__(self, model: ECD, config: dict, device: torch.device, run_dir: Path | None):
        self.model = model
        self.settings = config["trainer"]
        self.seed = config["seed"]
        self.device = device
        self.run_dir = run_dir
        check_precision(self.settings["precision"], device)

    @property
    def checkpoint_dir(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints"

    def _watched(self) -> tuple[str, str, str]:
        field_name = self.settings["validation_field"]
        metric = self.settings["validation_metric"]
        output_type = None if field_name == "combined" else self.model.output_features[field_name].config["type"]
        goal = "min" if output_type is None else metrics.get(metric, output_type).extra["goal"]
        return field_name, metric, goal

    def fit(self, train: ArrayDataset, validation: ArrayDataset, test: ArrayDataset, resume: bool = False) -> dict:
        s = self.settings
        model = self.model.to(self.device)
        optimizer = build_optimizer(model, s["optimizer"], s["learning_rate"], s["weight_decay"])
        scaler = torch.amp.GradScaler("cuda") if s["precision"] == "fp16" else None
        batch_size, accumulation = s["batch_size"], s["gradient_accumulation_steps"]
        batches_per_epoch = train.num_batches(batch_size, fold_single_row=True)
        steps_per_epoch = math.ceil(batches_per_epoch / accumulation)
        total_steps = s["train_steps"] or s["epochs"] * steps_per_epoch
        epochs = math.ceil(total_steps / steps_per_epoch)
        watch_split = "validation" if len(validation) else "train"
        if watch_split == "train":
            warnings.warn("the validation split is empty: early stopping and the best checkpoint use the "
                          "training split's metrics", stacklevel=2)
        field_name, metric, goal = self._watched()

        state = TrainerState()
        if resume and self.checkpoint_dir is not None and has_checkpoint(self.checkpoint_dir / "latest"):
            state = TrainerState(**load_checkpoint(self.checkpoint_dir / "latest", model, optimizer, scaler))
        if state.finished:
            self._restore_best(watch_split)
            return state.statistics

        names = model.input_names + list(model.output_features)
        after_step = getattr(model, "after_optimizer_step", None)  # a model's own per-step work (AdaLoRA)
        progress = tqdm(total=total_steps, initial=state.step, disable=not s["progress_bar"], unit="step",
                        dynamic_ncols=True, leave=True)
        last_refresh = time.monotonic()
        stop = False
        for epoch in range(state.epoch, epochs):
            progress.set_description(f"epoch {epoch + 1}/{epochs}")
            model.train()
            order = np.random.default_rng([self.seed, epoch]).permutation(len(train))
            loss_sum = torch.tensor(state.loss_sum, device=self.device)
            output_sums = {name: torch.tensor(state.output_loss_sums.get(name, 0.0), device=self.device)
                           for name in model.output_features}
            batch_index = state.batch_in_epoch
            for batch in train.batches(batch_size, order, start=state.batch_in_epoch, names=names, device=self.device,
                                       fold_single_row=True):
                with out_of_memory_hint(s), autocast(s["precision"], self.device):
                    logits = model(batch)
                    loss, each = model.losses(logits, batch)
                batch_index += 1
                # on the CPU this check costs nothing; on a GPU it is a sync per step, paid only for `skip`
                # (`stop` is checked on the progress timer and at the end of the epoch there)
                if (self.device.type == "cpu" or s["nonfinite_loss"] == "skip") and not torch.isfinite(loss).item():
                    if s["nonfinite_loss"] == "stop":
                        progress.close()
                        raise nonfinite_error(loss.item(), epoch, state.step)
                    state.skipped_batches += 1
                    if state.skipped_batches == 1:
                        warnings.warn(f"non-finite training loss in epoch {epoch + 1} (step {state.step}): the batch is "
                                      "skipped (trainer.nonfinite_loss: skip); the count is in training_statistics.json",
                                      stacklevel=2)
                    optimizer.zero_grad(set_to_none=True)  # the group this batch belonged to is dropped whole
                    continue
                scaled = loss / accumulation if accumulation > 1 else loss  # a division is one more autograd node
                with out_of_memory_hint(s):
                    (scaler.scale(scaled) if scaler is not None else scaled).backward()
                loss_sum += loss.detach()
                for name, value in each.items():
                    output_sums[name] += value.detach()
                if batch_index % accumulation and batch_index != batches_per_epoch:
                    continue
                # one optimizer step
                rate = learning_rate_at(state.step, s["learning_rate"], s["learning_rate_scheduler"], total_steps,
                                        state.plateau_factor)
                for group in optimizer.param_groups:
                    group["lr"] = rate * group.get("lr_scale", 1.0)
                if s["max_grad_norm"] is not None:
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), s["max_grad_norm"])
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                if after_step is not None:
                    after_step(state.step)
                optimizer.zero_grad(set_to_none=True)
                state.step += 1
                progress.update(1)
                if time.monotonic() - last_refresh > PROGRESS_REFRESH_SECONDS:  # a host sync, on a timer
                    running = loss_sum.item() / batch_index
                    if not math.isfinite(running):
                        progress.close()
                        raise nonfinite_error(running, epoch, state.step)
                    progress.set_postfix(loss=f"{running:.4f}", lr=f"{rate:.2e}")
                    last_refresh = time.monotonic()
                if state.step >= total_steps:
                    break
                if s["steps_per_checkpoint"] and state.step % s["steps_per_checkpoint"] == 0 \
                        and batch_index < batches_per_epoch:
                    state.batch_in_epoch = batch_index
                    state.loss_sum = loss_sum.item()
                    state.output_loss_sums = {name: value.item() for name, value in output_sums.items()}
                    self._save_latest(model, optimizer, scaler, state)

            # end of epoch: statistics, evaluation, early stopping, checkpoints
            trained = max(1, batch_index)
            train_losses = {name: value.item() / trained for name, value in output_sums.items()}
            train_losses["combined"] = loss_sum.item() / trained
            if not math.isfinite(train_losses["combined"]):
                progress.close()
                raise nonfinite_error(train_losses["combined"], epoch, state.step)
            state.epoch, state.batch_in_epoch, state.loss_sum, state.output_loss_sums = epoch + 1, 0, 0.0, {}
            results = self._evaluate_epoch(train_losses, train, validation, test)
            self._record(state, epoch, results)
            value = results[watch_split][field_name][metric]
            improved = state.best_value is None or (value < state.best_value if goal == "min" else value > state.best_value)
            if improved:
                state.best_value, state.best_epoch = value, epoch + 1
                state.evaluations_without_improvement = state.plateau_evaluations = 0
                self._save_best(model)
            else:
                state.evaluations_without_improvement += 1
                state.plateau_evaluations += 1
                scheduler = s["learning_rate_scheduler"]
                if scheduler["reduce_on_plateau"] and state.plateau_evaluations >= scheduler["reduce_on_plateau"]:
                    state.plateau_factor *= scheduler["reduce_factor"]
                    state.plateau_evaluations = 0
            stop = (s["early_stop"] and state.evaluations_without_improvement >= s["early_stop"]) \
                or state.step >= total_steps
            state.finished = stop or epoch + 1 == epochs
            state.statistics["skipped_batches"] = state.skipped_batches
            state.statistics["best"] = {"epoch": state.best_epoch, "split": watch_split, "field": field_name,
                                        "metric": metric, "value": state.best_value}
            self._save_latest(model, optimizer, scaler, state)
            if self.run_dir is not None:
                atomic.write_json(self.run_dir / "training_statistics.json", state.statistics)
            if stop:
                break
        progress.close()
        self._restore_best(watch_split)
        return state.statistics

    def _evaluate_epoch(self, train_losses: dict, train: ArrayDataset, validation: ArrayDataset,
                        test: ArrayDataset) -> dict:
        s = self.settings
        results = {}
        with out_of_memory_hint(s):
            return self._evaluate_splits(train_losses, train, validation, test, results)

    def _evaluate_splits(self, train_losses: dict, train: ArrayDataset, validation: ArrayDataset,
                         test: ArrayDataset, results: dict) -> dict:
        s = self.settings
        if s["evaluate_training_set"] or not len(validation):
            results["train"] = self.model.evaluate_dataset(train, s["eval_batch_size"], self.device, s["precision"])
        else:
            results["train"] = {name: {"loss": value} for name, value in train_losses.items()}
        for split, dataset in (("validation", validation), ("test", test)):
            if len(dataset):
                results[split] = self.model.evaluate_dataset(dataset, s["eval_batch_size"], self.device, s["precision"])
        return results

    @staticmethod
    def _record(state: TrainerState, epoch: int, results: dict) -> None:
        statistics = state.statistics
        statistics.setdefault("epochs", []).append(epoch + 1)
        statistics.setdefault("steps", []).append(state.step)
        for split, by_output in results.items():
            for output, values in by_output.items():
                for metric, value in values.items():
                    statistics.setdefault(split, {}).setdefault(output, {}).setdefault(metric, []).append(value)

    def _save_latest(self, model, optimizer, scaler, state: TrainerState) -> None:
        if self.checkpoint_dir is not None:
            save_checkpoint(self.checkpoint_dir / "latest", model, optimizer, scaler, asdict(state))

    def _save_best(self, model: ECD) -> None:
        if self.checkpoint_dir is None:
            state = model.saved_state() if hasattr(model, "saved_state") else model.state_dict()
            self._best_in_memory = {k: v.detach().clone() for k, v in state.items()}
            return
        with atomic.atomic_dir(self.checkpoint_dir / "best") as tmp:
            save_weights(model, tmp / "model.safetensors")

    def _restore_best(self, watch_split: str) -> None:
        """Training ends on the weights of the best evaluation, not the last one."""
        if self.checkpoint_dir is None:
            best = getattr(self, "_best_in_memory", None)
            if best is not None:
                if hasattr(self.model, "load_saved_state"):
                    self.model.load_saved_state(best)
                else:
                    self.model.load_state_dict(best)
            return
        best = self.checkpoint_dir / "best" / "model.safetensors"
        atomic.recover_dir(self.checkpoint_dir / "best")
        if best.is_file():
            load_weights(self.model, best)
