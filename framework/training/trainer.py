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
from framework.data.dataset import ArrayDataset, batch_count
from framework.errors import FrameworkError
from framework.models.ecd import ECD
from framework.models.weights import load_weights, save_weights
from framework.registry import metrics
from framework.training.checkpoints import has_checkpoint
from framework.training.device import autocast, check_precision
from framework.training.length_grouping import grouped_order, row_lengths
from framework.training.loggers import log_epoch
from framework.training.optimizers import build_optimizer
from framework.training.schedule import learning_rate_at
from framework.training.strategies import build_strategy

PROGRESS_REFRESH_SECONDS = 0.5


def planned_steps(settings: dict, rows: int) -> tuple[int, int, int]:
    """(batches per epoch, optimizer steps per epoch, optimizer steps in all) over `rows` training rows read
    by this process (its share of them under several processes); what AdaLoRA's schedule must match too."""
    batches = max(1, batch_count(rows, settings["batch_size"], fold_single_row=True))
    per_epoch = math.ceil(batches / settings["gradient_accumulation_steps"])
    return batches, per_epoch, settings["train_steps"] or settings["epochs"] * per_epoch


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
    def __init__(self, model: ECD, config: dict, device: torch.device, run_dir: Path | None, callbacks=()):
        self.model = model
        self.settings = config["trainer"]
        self.seed = config["seed"]
        self.device = device
        self.run_dir = run_dir
        # objects with on_epoch_end(epoch, statistics), called once the epoch is recorded; one may stop
        # training by raising (hyperopt's pruning raises optuna.TrialPruned)
        self.callbacks = tuple(callbacks)
        check_precision(self.settings["precision"], device)
        self.strategy = build_strategy(self.settings, device)  # local, ddp or deepspeed: see strategies/

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
        strategy = self.strategy
        forward, optimizer = strategy.prepare(model, optimizer)  # a DDP wrapper or DeepSpeed engine, or the model
        batch_size, accumulation = s["batch_size"], s["gradient_accumulation_steps"]
        batches_per_epoch, steps_per_epoch, total_steps = planned_steps(s, strategy.rows_per_process(len(train)))
        epochs = math.ceil(total_steps / steps_per_epoch)
        watch_split = "validation" if len(validation) else "train"
        if watch_split == "train":
            warnings.warn("the validation split is empty: early stopping and the best checkpoint use the "
                          "training split's metrics", stacklevel=2)
        field_name, metric, goal = self._watched()

        state = TrainerState()
        if resume and self.checkpoint_dir is not None and has_checkpoint(self.checkpoint_dir / "latest"):
            state = TrainerState(**strategy.load_checkpoint(self.checkpoint_dir / "latest", model, optimizer))
        if state.finished:
            strategy.finish(model)
            self._restore_best(watch_split)
            return state.statistics

        names = model.input_names + list(model.output_features)
        lengths = row_lengths(train, names) if s["group_by_length"] else None
        after_step = getattr(model, "after_optimizer_step", None)  # a model's own per-step work (AdaLoRA)
        progress = tqdm(total=total_steps, initial=state.step, disable=not (s["progress_bar"] and strategy.is_main),
                        unit="step", dynamic_ncols=True, leave=True)
        last_refresh = time.monotonic()
        stop = False
        for epoch in range(state.epoch, epochs):
            progress.set_description(f"epoch {epoch + 1}/{epochs}")
            model.train()
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(len(train))
            if lengths is not None:
                order = grouped_order(order, lengths, batch_size * strategy.world_size, rng)
            rows, order = strategy.epoch_rows(train, order)
            loss_sum = torch.tensor(state.loss_sum, device=self.device)
            output_sums = {name: torch.tensor(state.output_loss_sums.get(name, 0.0), device=self.device)
                           for name in model.output_features}
            batch_index = state.batch_in_epoch
            for batch in rows.batches(batch_size, order, start=state.batch_in_epoch, names=names, device=self.device,
                                      fold_single_row=True):
                boundary = (batch_index + 1) % accumulation == 0 or batch_index + 1 == batches_per_epoch
                with out_of_memory_hint(s), autocast(s["precision"], self.device), strategy.accumulating(boundary):
                    logits = forward(batch)
                    loss, each = model.losses(logits, batch)
                batch_index += 1
                # on the CPU this check costs nothing; on a GPU it is a sync per step, paid only for `skip`
                # (`stop` is checked on the progress timer and at the end of the epoch there)
                if (self.device.type == "cpu" or s["nonfinite_loss"] == "skip") and not strategy.all_finite(loss):
                    if s["nonfinite_loss"] == "stop":
                        progress.close()
                        raise nonfinite_error(loss.item(), epoch, state.step)
                    state.skipped_batches += 1
                    if state.skipped_batches == 1:
                        warnings.warn(f"non-finite training loss in epoch {epoch + 1} (step {state.step}): the batch is "
                                      "skipped (trainer.nonfinite_loss: skip); the count is in training_statistics.json",
                                      stacklevel=2)
                    strategy.zero_grad(optimizer)  # the group this batch belonged to is dropped whole
                    continue
                scaled = loss / accumulation if accumulation > 1 else loss  # a division is one more autograd node
                with out_of_memory_hint(s), strategy.accumulating(boundary):
                    strategy.backward(scaled, boundary)
                loss_sum += loss.detach()
                for name, value in each.items():
                    output_sums[name] += value.detach()
                if not boundary:
                    continue
                # one optimizer step
                rate = learning_rate_at(state.step, s["learning_rate"], s["learning_rate_scheduler"], total_steps,
                                        state.plateau_factor)
                for group in optimizer.param_groups:
                    group["lr"] = rate * group.get("lr_scale", 1.0)
                strategy.step(model, optimizer)  # clipping to max_grad_norm and the fp16 scaler included
                if after_step is not None:
                    after_step(state.step)
                strategy.zero_grad(optimizer)
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
                    # the sums of all processes (a collective: every process checkpoints at the same step)
                    total, *outputs = strategy.all_sum([loss_sum, *output_sums.values()])
                    state.loss_sum = total.item()
                    state.output_loss_sums = {name: value.item() for name, value in zip(output_sums, outputs)}
                    self._save_latest(model, optimizer, state)

            # end of epoch: statistics, evaluation, early stopping, checkpoints
            trained = max(1, batch_index) * strategy.world_size
            total, *outputs = strategy.all_sum([loss_sum, *output_sums.values()])
            train_losses = {name: value.item() / trained for name, value in zip(output_sums, outputs)}
            train_losses["combined"] = total.item() / trained
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
            self._save_latest(model, optimizer, state)
            if self.run_dir is not None and strategy.is_main:
                atomic.write_json(self.run_dir / "training_statistics.json", state.statistics)
                log_epoch(self.run_dir, s, state.statistics, final=state.finished)  # trainer.loggers
            for callback in self.callbacks:
                try:
                    callback.on_epoch_end(epoch + 1, state.statistics)
                except BaseException:
                    progress.close()
                    raise
            if stop:
                break
        progress.close()
        strategy.finish(model)  # a plain module with the whole trained weights on every process
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

    def _save_latest(self, model, optimizer, state: TrainerState) -> None:
        if self.checkpoint_dir is not None:
            self.strategy.save_checkpoint(self.checkpoint_dir / "latest", model, optimizer, asdict(state))

    def _save_best(self, model: ECD) -> None:
        with self.strategy.full_weights(model):  # whole, fp32 weights (gathered under ZeRO-3)
            if self.checkpoint_dir is None:
                state = model.saved_state() if hasattr(model, "saved_state") else model.state_dict()
                self._best_in_memory = {k: v.detach().clone() for k, v in state.items()}
                return
            if self.strategy.is_main:
                with atomic.atomic_dir(self.checkpoint_dir / "best") as tmp:
                    save_weights(model, tmp / "model.safetensors")
        self.strategy.barrier()  # the others read it back at the end

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
