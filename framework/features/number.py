"""Numbers: parsed strictly, missing values filled, normalised with statistics of the training split."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from framework.config import fields as f
from framework.errors import DataError
from framework.features.base import describe_rows, missing_mask
from framework.registry import register_feature_type


class NumberPreprocessing(f.Schema):
    missing_value_strategy = f.Choice(
        ["fill_with_const", "fill_with_mean", "fill_with_mode", "drop_row"], "fill_with_mean",
        doc="what replaces a missing value (outputs default to drop_row)")
    fill_value = f.Float(0.0, doc="the constant used by fill_with_const")
    normalization = f.Choice(["zscore", "minmax", "log1p", None], "zscore",
                             doc="scaling fitted on the training split; predictions are scaled back")


def parse_numbers(column: pd.Series, name: str) -> np.ndarray:
    """float64 values with NaN where missing; unparsable text is an error naming where it is."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = missing_mask(column)
    parsed = pd.to_numeric(column.where(~missing, None), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(parsed) & ~missing
    if bad.any():
        raise DataError(f"number feature '{name}': {describe_rows(column, bad)} are not numbers; "
                        "fix or remove them, or declare the column as category")
    infinite = np.isinf(parsed)
    if infinite.any():
        raise DataError(f"number feature '{name}': {describe_rows(column, infinite)} are infinite")
    return parsed


def _scale(values: np.ndarray, metadata: dict) -> np.ndarray:
    kind = metadata["normalization"]
    if kind == "zscore":
        return (values - metadata["mean"]) / metadata["std"]
    if kind == "minmax":
        return (values - metadata["min"]) / metadata["range"]
    if kind == "log1p":
        return np.log1p(values)
    return values


@register_feature_type("number")
class NumberFeature:
    preprocessing_schema = NumberPreprocessing
    default_encoder = "passthrough"
    default_decoder = "regressor"
    default_loss = "mse"
    default_metrics = ("loss", "mse", "mae", "rmse", "r2")

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict:
        values = parse_numbers(column, name)
        present = values[~np.isnan(values)]
        if present.size == 0:
            raise DataError(f"number feature '{name}': every value in the training split is missing")
        strategy = settings["missing_value_strategy"]
        fill = {"fill_with_const": settings["fill_value"], "fill_with_mean": float(present.mean())}.get(strategy)
        if fill is None:  # mode, and the value drop_row falls back on at predict time
            uniques, counts = np.unique(present, return_counts=True)
            fill = float(uniques[np.argmax(counts)])
        metadata = {"normalization": settings["normalization"], "fill_value": float(fill)}
        if settings["normalization"] == "log1p" and present.min() <= -1:
            raise DataError(f"number feature '{name}': log1p normalization needs values > -1, "
                            f"the training split has {present.min()}")
        std = float(present.std())
        span = float(present.max() - present.min())
        metadata.update(mean=float(present.mean()), std=std if std > 0 else 1.0,
                        min=float(present.min()), range=span if span > 0 else 1.0)
        return metadata

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> np.ndarray:
        values = parse_numbers(column, name)
        values = np.where(np.isnan(values), metadata["fill_value"], values)
        if metadata["normalization"] == "log1p" and values.min(initial=0) <= -1:
            raise DataError(f"number feature '{name}': log1p normalization needs values > -1, got {values.min()}")
        return _scale(values, metadata).astype(np.float32)

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {"input_size": 1}

    @staticmethod
    def output_context(metadata: dict) -> dict:
        return {"num_outputs": 1}

    @staticmethod
    def unscale(values: torch.Tensor, metadata: dict) -> torch.Tensor:
        kind = metadata["normalization"]
        if kind == "zscore":
            return values * metadata["std"] + metadata["mean"]
        if kind == "minmax":
            return values * metadata["range"] + metadata["min"]
        if kind == "log1p":
            return torch.expm1(values)
        return values

    @staticmethod
    def predict(logits: torch.Tensor, metadata: dict, settings: dict) -> dict[str, torch.Tensor]:
        return {"predictions": NumberFeature.unscale(logits.squeeze(-1).float(), metadata)}

    @staticmethod
    def metric_target(target: torch.Tensor, metadata: dict) -> torch.Tensor:
        return NumberFeature.unscale(target.float(), metadata)

    @staticmethod
    def postprocess(arrays: dict[str, np.ndarray], metadata: dict, name: str) -> dict:
        return {f"{name}_predictions": arrays["predictions"]}


__all__ = ["NumberFeature", "parse_numbers"]
