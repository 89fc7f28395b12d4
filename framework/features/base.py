"""What a data type provides to the pipeline, and helpers every type shares.

A feature type is a class of static methods registered under its name. Preprocessing follows
fit/transform: `fit` sees the training split only and returns JSON metadata; `transform` turns a
column into one contiguous numpy array using that metadata, the same way at train and predict time.
"""
from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from framework.config import fields as f

class FeatureType(Protocol):
    """The interface of a registered data type (see number.py for a complete one)."""

    preprocessing_schema: type[f.Schema]
    default_encoder: str
    default_decoder: str | None
    default_loss: str | None
    default_metrics: tuple[str, ...]

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict: ...

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> np.ndarray: ...

    @staticmethod
    def input_context(metadata: dict) -> dict: ...

    @staticmethod
    def output_context(metadata: dict) -> dict: ...

    @staticmethod
    def predict(logits: torch.Tensor, metadata: dict, settings: dict) -> dict[str, torch.Tensor]: ...

    @staticmethod
    def metric_target(target: torch.Tensor, metadata: dict) -> torch.Tensor: ...

    @staticmethod
    def postprocess(arrays: dict[str, np.ndarray], metadata: dict, name: str) -> dict[str, Any]: ...


def missing_mask(column: pd.Series) -> np.ndarray:
    """Missing means NA or a string of only whitespace (an empty CSV cell read as text)."""
    mask = column.isna().to_numpy().copy()
    if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
        stripped = column.astype("string").str.strip()
        mask |= (stripped == "").fillna(True).to_numpy(dtype=bool)
    return mask


def _short(text: str, limit: int = 60) -> str:
    """A value as shown in a message: a huge string is cut, so the message stays readable."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def describe_rows(column: pd.Series, bad: np.ndarray, limit: int = 5) -> str:
    """'3 rows (at index 4, 9, 12; values 'abc', 'x', '?')': the index labels of the dataset, not positions
    inside a split, so the user can find the rows in the data they gave."""
    positions = np.flatnonzero(bad)
    shown = positions[:limit]
    examples = ", ".join(_short(repr(column.iloc[i])) for i in shown)
    more = ", ..." if len(positions) > limit else ""
    where = ", ".join(str(column.index[i]) for i in shown) + more
    noun = "row" if len(positions) == 1 else "rows"
    return f"{len(positions)} {noun} (at index {where}; values {examples}{more})"


def as_strings(column: pd.Series) -> pd.Series:
    """Labels as a nullable string column; integral floats (ints read beside NaN) print as ints."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy(dtype=float, na_value=np.nan)
        present = values[~np.isnan(values)]
        if np.all(present == np.round(present)):
            return pd.Series(values, index=column.index).astype("Int64").astype("string")
    return column.astype("string")
