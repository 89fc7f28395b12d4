"""Categories: a vocabulary of the most common training labels, with <UNK> for everything else."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from framework.config import fields as f
from framework.errors import DataError
from framework.features.base import as_strings, missing_mask
from framework.registry import register_feature_type

UNKNOWN = "<UNK>"


class CategoryPreprocessing(f.Schema):
    missing_value_strategy = f.Choice(["fill_with_const", "fill_with_mode", "drop_row"], "fill_with_const",
                                      doc="what replaces a missing value (outputs default to drop_row)")
    fill_value = f.Str(UNKNOWN, doc="the label used by fill_with_const")
    most_common = f.Int(10000, min=1, doc="vocabulary cap: rarer labels map to <UNK>")
    min_frequency = f.Int(1, min=1, doc="labels seen fewer times in training map to <UNK>")
    lowercase = f.Bool(False, doc="lowercase labels before building the vocabulary")


def _labels(column: pd.Series, settings: dict, fill_value: str) -> pd.Series:
    strings = as_strings(column).str.strip()
    strings = strings.where(~missing_mask(column), fill_value)
    return strings.str.lower() if settings["lowercase"] else strings


@register_feature_type("category")
class CategoryFeature:
    preprocessing_schema = CategoryPreprocessing
    default_encoder = "dense"
    default_decoder = "classifier"
    default_loss = "softmax_cross_entropy"
    default_metrics = ("loss", "accuracy", "top_k_accuracy", "macro_f1")

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict:
        present = column[~missing_mask(column)]
        if present.empty:
            raise DataError(f"category feature '{name}': every value in the training split is missing")
        counts = _labels(present, settings, UNKNOWN).value_counts()
        counts = counts[counts >= settings["min_frequency"]]
        # most frequent first, ties by label, so the vocabulary does not depend on row order
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: settings["most_common"]]
        vocab = [UNKNOWN] + [label for label, _ in ranked if label != UNKNOWN]
        fill = settings["fill_value"]
        if settings["missing_value_strategy"] != "fill_with_const":
            fill = vocab[1] if len(vocab) > 1 else UNKNOWN
        frequencies = counts.reindex(vocab, fill_value=0).astype(np.int64).tolist()
        return {"vocab": vocab, "frequencies": frequencies, "fill_value": fill}

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> np.ndarray:
        labels = _labels(column, settings, metadata["fill_value"])
        # a hash lookup in Arrow's C++ kernels: ~15x faster than pd.Categorical on string columns
        codes = pc.index_in(pa.array(labels), value_set=pa.array(metadata["vocab"], type=pa.string()))
        return pc.fill_null(codes, 0).to_numpy().astype(np.int64)  # unseen labels are <UNK>

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {"vocab_size": len(metadata["vocab"])}

    @staticmethod
    def output_context(metadata: dict) -> dict:
        return {"num_outputs": len(metadata["vocab"]), "vocab": metadata["vocab"],
                "frequencies": metadata["frequencies"]}

    @staticmethod
    def predict(logits: torch.Tensor, metadata: dict, settings: dict) -> dict[str, torch.Tensor]:
        probabilities = torch.softmax(logits.float(), dim=-1)
        return {"predictions": probabilities.argmax(dim=-1), "probabilities": probabilities}

    @staticmethod
    def metric_target(target: torch.Tensor, metadata: dict) -> torch.Tensor:
        return target

    @staticmethod
    def postprocess(arrays: dict[str, np.ndarray], metadata: dict, name: str) -> dict:
        vocab = np.asarray(metadata["vocab"], dtype=object)
        predicted = arrays["predictions"].astype(np.int64)
        probabilities = arrays["probabilities"]
        columns = {f"{name}_predictions": vocab[predicted],
                   f"{name}_probability": probabilities[np.arange(len(predicted)), predicted]}
        for index, label in enumerate(vocab):
            columns[f"{name}_probabilities_{label}"] = probabilities[:, index]
        return columns
