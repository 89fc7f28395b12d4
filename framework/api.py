"""The Python API: `Model(config).train(df)`, then predict, evaluate, collect_activations, save, load.

Model wires config, data, model and trainer together; each step's logic lives in its own module.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework import atomic
from framework.config import load_config
from framework.errors import FrameworkError


@dataclass
class TrainResult:
    training_statistics: dict
    test_metrics: dict
    validation_metrics: dict
    output_dir: Path | None


class Model:
    def __init__(self, config: dict | str | os.PathLike):
        self.config = load_config(config)
        self.metadata: dict | None = None
        self.module = None
        self.tokenizer = None  # an llm's, loaded on first use

    @property
    def is_llm(self) -> bool:
        return self.config["model_type"] == "llm"

    # -- training -----------------------------------------------------------------------------
    def train(self, dataset: Any, validation: Any = None, test: Any = None, *, output_dir: str | os.PathLike | None = "results",
              experiment_name: str = "experiment", resume: bool = False, cache_dir: str | os.PathLike | None = None,
              callbacks: list | tuple = ()) -> TrainResult:
        """Trains on `dataset` (split by the config unless `validation`/`test` are given).

        Writes results/<experiment_name>_<n>/ (config, statistics, checkpoints, model/); with
        `resume`, continues the newest such run from its latest checkpoint. `output_dir=None`
        trains in memory and writes nothing. `callbacks`: objects with `on_epoch_end(epoch,
        statistics)`, which may end training by raising.
        """
        from framework.training import distributed

        with distributed.joined(self.config["trainer"]):  # launched processes meet before any model or data
            if self.is_llm:
                from framework.llm import runner

                return runner.train(self, dataset, validation, test, output_dir, experiment_name, resume, callbacks)
            return self._train_ecd(dataset, validation, test, output_dir, experiment_name, resume, cache_dir, callbacks)

    def _train_ecd(self, dataset, validation, test, output_dir, experiment_name, resume, cache_dir, callbacks):
        from framework import runs
        from framework.data.pipeline import prepare_training
        from framework.models.ecd import ECD
        from framework.models.model_dir import dump_config
        from framework.training import distributed
        from framework.training.device import check_precision, resolve_device
        from framework.training.evaluation import evaluate
        from framework.training.seeding import seeded
        from framework.training.trainer import Trainer

        device = distributed.device_for(resolve_device(self.config["trainer"]["device"]))
        check_precision(self.config["trainer"]["precision"], device)
        run_dir = None if output_dir is None else distributed.opened_by_main(
            lambda: runs.open_run(output_dir, experiment_name, dump_config(self.config), resume))
        prepared = prepare_training(self.config, dataset, validation, test, cache_dir=cache_dir)
        splits = prepared.splits
        self.metadata = prepared.metadata
        with seeded(self.config["seed"], device):
            self.module = ECD(self.config, self.metadata)
            trainer = Trainer(self.module, self.config, device, run_dir, callbacks=callbacks)
            statistics = trainer.fit(splits["train"], splits["validation"], splits["test"], resume=resume)
        batch_size = self.config["trainer"]["eval_batch_size"]
        precision = self.config["trainer"]["precision"]
        metrics = {split: evaluate(self.module, splits[split], batch_size, device, precision) if len(splits[split]) else {}
                   for split in ("validation", "test")}
        if run_dir is not None and distributed.is_main():
            self.save(run_dir / "model")
            atomic.write_json(run_dir / "test_metrics.json", metrics["test"])
        return TrainResult(statistics, metrics["test"], metrics["validation"], run_dir)

    # -- inference ----------------------------------------------------------------------------
    def _require_trained(self) -> None:
        if self.module is None:
            raise FrameworkError("the model is not trained: call train() or Model.load() first")

    def _require_ecd(self, verb: str) -> None:
        if self.is_llm:
            raise FrameworkError(f"{verb} applies to ecd models; for an LLM's embeddings use it as a text encoder "
                                 "of an ecd model")

    def _device(self):
        from framework.training.device import resolve_device

        device = resolve_device(self.config["trainer"]["device"])
        self.module.to(device)
        return device

    def _batch_size(self, batch_size: int | None) -> int:
        return batch_size or self.config["trainer"]["eval_batch_size"]

    def predict(self, dataset: Any, batch_size: int | None = None):
        """A DataFrame of <output>_predictions (and probabilities for classifiers), in input row order.

        An llm predicts without training too: zero-shot, or few-shot with prompt.examples."""
        if self.is_llm:
            from framework.llm import runner

            return runner.predict(self, dataset, batch_size)
        from framework.predict import predict_frame

        self._require_trained()
        return predict_frame(self.module, self.config, self.metadata, dataset, self._batch_size(batch_size),
                             self._device())

    def evaluate(self, dataset: Any, batch_size: int | None = None) -> dict[str, dict[str, float]]:
        """{output name: {metric: value}} plus {"combined": {"loss": value}}."""
        if self.is_llm:
            from framework.llm import runner

            return runner.evaluate(self, dataset, batch_size)
        from framework.data.pipeline import prepare_inference
        from framework.training.evaluation import evaluate

        self._require_trained()
        arrays, _ = prepare_inference(self.config, self.metadata, dataset, with_targets=True)
        return evaluate(self.module, arrays, self._batch_size(batch_size), self._device(),
                        self.config["trainer"]["precision"])

    def layer_names(self) -> list[str]:
        """Names accepted by collect_activations."""
        from framework.activations import layer_names

        self._require_trained()
        self._require_ecd("layer_names")
        return layer_names(self.module)

    def collect_activations(self, dataset: Any, layers: list[str], batch_size: int | None = None) -> dict:
        """{layer name: array with one row per input row} from forward hooks on the named layers."""
        from framework.activations import collect
        from framework.data.pipeline import prepare_inference

        self._require_trained()
        self._require_ecd("collect_activations")
        arrays, _ = prepare_inference(self.config, self.metadata, dataset, with_targets=False)
        return collect(self.module, arrays, list(layers), self._batch_size(batch_size), self._device())

    def embed(self, dataset: Any, feature: str | None = None, batch_size: int | None = None):
        """The pooled encoder output of one input feature (default: the only text input, else the only
        input) for every row, as an array [rows, size]: e.g. an LLM encoder's text embeddings."""
        self._require_trained()
        self._require_ecd("embed")
        inputs = [f["name"] for f in self.config["input_features"]]
        if feature is None:
            texts = [f["name"] for f in self.config["input_features"] if f["type"] == "text"]
            candidates = texts if len(texts) == 1 else inputs
            if len(candidates) != 1:
                raise FrameworkError(f"embed needs feature=: the model has several inputs ({', '.join(inputs)})")
            feature = candidates[0]
        if feature not in inputs:
            from framework.config.problems import did_you_mean

            raise FrameworkError(f"unknown input feature '{feature}'; {did_you_mean(feature, inputs)}")
        layer = f"input_features.{feature}.encoder"
        return self.collect_activations(dataset, [layer], batch_size)[layer]

    # -- plots (framework/visualize.py): matplotlib Figures, also written as PNGs to output_directory ------
    def plot_learning_curves(self, statistics: Any, output_feature: str | None = None,
                             output_directory: str | os.PathLike | None = None) -> dict:
        """{name: Figure} per output and metric; `statistics`: TrainResult.training_statistics, a
        training_statistics.json or a run directory."""
        from framework import visualize

        return visualize.saved(visualize.learning_curves(statistics, output_feature), output_directory)

    def plot_confusion_matrix(self, dataset: Any, output_feature: str | None = None,
                              output_directory: str | os.PathLike | None = None) -> dict:
        """{"confusion_matrix_<output>": Figure, "class_metrics_<output>": Figure} (precision/recall/F1)."""
        from framework import visualize

        return visualize.saved(visualize.plot_model(self, "confusion_matrix", dataset, output_feature), output_directory)

    def plot_roc(self, dataset: Any, output_feature: str | None = None, output_directory=None):
        return self._plot_one("roc", dataset, output_feature, output_directory)

    def plot_precision_recall(self, dataset: Any, output_feature: str | None = None, output_directory=None):
        return self._plot_one("pr", dataset, output_feature, output_directory)

    def plot_calibration(self, dataset: Any, output_feature: str | None = None, output_directory=None):
        return self._plot_one("calibration", dataset, output_feature, output_directory)

    def plot_pred_vs_true(self, dataset: Any, output_feature: str | None = None, output_directory=None):
        return self._plot_one("pred_vs_true", dataset, output_feature, output_directory)

    def _plot_one(self, kind: str, dataset: Any, output_feature: str | None, output_directory):
        from framework import visualize

        figures = visualize.saved(visualize.plot_model(self, kind, dataset, output_feature), output_directory)
        return visualize.only(figures, f"plot_{kind}")

    # -- persistence --------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, merged: bool = False) -> None:
        """Writes the model to `directory` atomically. An llm's adapter is saved in peft's format; with
        `merged=True` also as one transformers model with the adapter folded in (merged/)."""
        self._require_trained()
        if self.is_llm:
            from framework.llm import runner

            return runner.save(self, directory, merged=merged)
        if merged:
            raise FrameworkError("merged=True applies to llm models (an adapter folded into its base model)")
        from framework.models.model_dir import save_model_dir

        save_model_dir(Path(directory), self.config, self.metadata, self.module)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Model":
        from framework.models.model_dir import load_model_dir

        if (Path(directory) / "tokenizer").is_dir() and not (Path(directory) / "weights.safetensors").is_file():
            from framework.llm import runner

            return runner.load(cls, Path(directory))

        config, metadata, module = load_model_dir(Path(directory))
        model = cls.__new__(cls)
        model.config, model.metadata, model.module, model.tokenizer = config, metadata, module, None
        return model
