"""Binary values: booleans, 0/1, yes/no words, or any two labels with one named as true."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from framework.config import fields as f
from framework.errors import DataError
from framework.features.base import as_strings, describe_rows, missing_mask
from framework.registry import register_feature_type

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off"})


class BinaryPreprocessing(f.Schema):
    missing_value_strategy = f.Choice(["fill_with_const", "fill_with_mode", "drop_row"], "fill_with_mode",
                                      doc="what replaces a missing value (outputs default to drop_row)")
    fill_value = f.Bool(False, doc="the constant used by fill_with_const")
    true_label = f.Str(None, doc="the label meaning true, for columns of two labels other than "
                                 "true/false, yes/no, 1/0 (e.g. 'survived')")


def parse_binary(column: pd.Series, name: str, true_label: str | None, false_label: str | None = None) -> np.ndarray:
    """float64 0/1 values with NaN where missing."""
    missing = missing_mask(column)
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    strings = as_strings(column).str.strip()
    if true_label is not None:
        is_true = (strings == true_label).fillna(False).to_numpy(dtype=bool)
        is_false = ~is_true & ~missing
        if false_label is not None:
            bad = is_false & ~(strings == false_label).fillna(False).to_numpy(dtype=bool)
            if bad.any():
                raise DataError(f"binary feature '{name}': {describe_rows(column, bad)} are neither "
                                f"'{true_label}' nor '{false_label}'")
    else:
        lower = strings.str.lower()
        is_true = lower.isin(TRUE_WORDS).fillna(False).to_numpy(dtype=bool)
        is_false = lower.isin(FALSE_WORDS).fillna(False).to_numpy(dtype=bool)
        bad = ~(is_true | is_false) & ~missing
        if bad.any():
            seen = ", ".join(repr(v) for v in strings[~missing].unique()[:4])
            raise DataError(f"binary feature '{name}': {describe_rows(column, bad)} are not true/false values; "
                            f"set preprocessing.true_label to the label that means true (labels seen: {seen})")
    values = np.where(is_true, 1.0, 0.0)
    values[missing] = np.nan
    return values


@register_feature_type("binary")
class BinaryFeature:
    preprocessing_schema = BinaryPreprocessing
    default_encoder = "passthrough"
    default_decoder = "regressor"
    default_loss = "binary_cross_entropy"
    default_metrics = ("loss", "accuracy", "roc_auc", "precision", "recall", "f1")

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict:
        true_label = settings["true_label"]
        false_label = None
        if true_label is not None:
            labels = as_strings(column).str.strip().dropna().unique().tolist()
            others = sorted(label for label in labels if label != true_label)
            if true_label not in labels or len(others) > 1:
                raise DataError(f"binary feature '{name}': true_label '{true_label}' needs a column of two labels "
                                f"including it; the training split has {sorted(labels)[:6]}")
            false_label = others[0] if others else f"not {true_label}"
        values = parse_binary(column, name, true_label)
        present = values[~np.isnan(values)]
        if present.size == 0:
            raise DataError(f"binary feature '{name}': every value in the training split is missing")
        mode = float(present.mean() >= 0.5)
        fill = float(settings["fill_value"]) if settings["missing_value_strategy"] == "fill_with_const" else mode
        return {"true_label": true_label, "false_label": false_label, "fill_value": fill,
                "positive_fraction": float(present.mean())}

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> np.ndarray:
        values = parse_binary(column, name, metadata["true_label"], metadata["false_label"])
        return np.where(np.isnan(values), metadata["fill_value"], values).astype(np.float32)

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {"input_size": 1}

    @staticmethod
    def output_context(metadata: dict) -> dict:
        return {"num_outputs": 1}

    @staticmethod
    def predict(logits: torch.Tensor, metadata: dict, settings: dict) -> dict[str, torch.Tensor]:
        probability = torch.sigmoid(logits.squeeze(-1).float())
        return {"predictions": probability >= settings["threshold"], "probabilities": probability}

    @staticmethod
    def metric_target(target: torch.Tensor, metadata: dict) -> torch.Tensor:
        return target

    @staticmethod
    def labels(metadata: dict) -> list:
        if metadata["true_label"] is None:
            return [False, True]
        return [metadata["false_label"], metadata["true_label"]]

    @staticmethod
    def postprocess(arrays: dict[str, np.ndarray], metadata: dict, name: str) -> dict:
        false_label, true_label = BinaryFeature.labels(metadata)
        predicted = arrays["predictions"].astype(bool)
        p_true = arrays["probabilities"]
        if metadata["true_label"] is None:
            predictions = predicted
        else:
            predictions = np.where(predicted, true_label, false_label).astype(object)
        return {
            f"{name}_predictions": predictions,
            f"{name}_probability": np.where(predicted, p_true, 1.0 - p_true),
            f"{name}_probabilities_{false_label}": 1.0 - p_true,
            f"{name}_probabilities_{true_label}": p_true,
        }
