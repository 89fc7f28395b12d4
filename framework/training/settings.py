"""The trainer section of a config."""
from __future__ import annotations

from marshmallow import fields, post_load

from framework.config import fields as f
from framework.training.loggers import LOGGERS
from framework.training.strategies.config import DeepSpeedSchema, resolve_deepspeed


class TrainerSchema(f.Schema):
    epochs = f.Int(100, min=1, doc="passes over the training split (early stopping may end sooner)")
    train_steps = f.Int(None, min=1, doc="total optimizer steps; overrides epochs when set")
    batch_size = f.Int(128, min=1, doc="rows per forward/backward pass")
    eval_batch_size = f.Int(1024, min=1, doc="rows per batch in evaluation and prediction")
    learning_rate = f.Float(1e-3, min=0.0, min_inclusive=False, doc="base learning rate")
    optimizer = f.Mapping(None, doc="{type: adam|adamw|sgd|rmsprop|adagrad, ...its settings}")
    weight_decay = f.Float(0.0, min=0.0, doc="weight decay passed to the optimizer")
    max_grad_norm = f.Float(None, min=0.0, min_inclusive=False, doc="clip the gradient norm to this value")
    learning_rate_scheduler = f.Mapping(None, doc="warmup, decay and reduce-on-plateau settings")
    gradient_accumulation_steps = f.Int(1, min=1, doc="batches whose gradients add up to one optimizer step")
    effective_batch_size = f.Int(None, min=1, doc="rows per optimizer step; sets gradient_accumulation_steps")
    early_stop = f.Int(5, min=0, doc="evaluations without improvement before stopping (0: never stop early)")
    validation_field = f.Str(None, doc="output feature watched for early stopping, or 'combined' (default: "
                                       "the only output, else combined)")
    validation_metric = f.Str("loss", doc="metric of validation_field watched for early stopping")
    steps_per_checkpoint = f.Int(0, min=0, doc="also checkpoint every N steps (0: at the end of each epoch only)")
    precision = f.Choice(["fp32", "bf16", "fp16"], "fp32", doc="autocast precision (fp16 needs a GPU)")
    device = f.Str("auto", doc="'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'")
    group_by_length = f.Bool(False, doc="batch rows of similar length together (text, sequence, timeseries, audio "
                                        "and llm prompts): less padding per batch, a faster epoch")
    evaluate_training_set = f.Bool(False, doc="also compute full metrics on the training split each epoch")
    progress_bar = f.Bool(True, doc="show a tqdm progress bar")
    nonfinite_loss = f.Choice(["stop", "skip"], "stop",
                              doc="a NaN/inf training loss stops training with a hint, or skips its batch")
    loggers = fields.List(f.Choice(list(LOGGERS), None), load_default=list,
                          metadata={"doc": "experiment trackers that receive each epoch's statistics: "
                                           f"{', '.join(LOGGERS)} (written under the run directory)"})
    strategy = f.Choice(["local", "ddp", "deepspeed"], "local",
                        doc="local: one process; ddp: torch DistributedDataParallel; deepspeed: ZeRO (launch "
                            "several processes with torchrun, deepspeed or `framework train --num-gpus N`)")
    deepspeed = fields.Nested(DeepSpeedSchema, load_default=None, allow_none=True,
                              metadata={"doc": "strategy deepspeed: {zero_stage, offload_optimizer, offload_param, "
                                               "nvme_path, fused_optimizer, config_file or config}"})

    @post_load
    def _strategy(self, trainer: dict, **_) -> dict:
        trainer["deepspeed"] = resolve_deepspeed(trainer)  # needs the rest of the trainer: checked after it
        return trainer
