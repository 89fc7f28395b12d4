"""Time series: a variable number of floats per row, written '0.5 1.2 0.7' (or as a list). Input only.

The column is a `Ragged` of float32 values padded with NaN per batch, each row cut to `max_length`
values, optionally standardised with the mean and deviation of every training value.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from framework.config import fields as f
from framework.data.ragged import Ragged
from framework.errors import DataError
from framework.features.vector import DELIMITER, parse_number_lists
from framework.registry import register_feature_type

logger = logging.getLogger(__name__)


class TimeseriesPreprocessing(f.Schema):
    missing_value_strategy = f.Choice(["fill_with_const", "drop_row"], "fill_with_const",
                                      doc="what replaces a missing series")
    fill_value = f.Str("0", doc="the series used by fill_with_const, written like a cell ('0' or '0 0 0')")
    delimiter = DELIMITER()
    max_length = f.Int(256, min=1, doc="longest series kept; longer ones are cut")
    truncation_side = f.Choice(["right", "left"], "right",
                               doc="where long series are cut: right keeps the first values, left the last")
    normalization = f.Choice(["zscore", None], "zscore",
                             doc="zscore: standardise with the mean and deviation of all training values")


def _fill_series(settings: dict, name: str) -> np.ndarray:
    text, delimiter = settings["fill_value"], settings["delimiter"]
    tokens = [token.strip() for token in text.split(delimiter)] if delimiter else text.split()
    try:
        values = np.array([token for token in tokens if token], dtype=np.float64)
    except ValueError:
        values = np.array([np.nan])
    if values.size == 0 or not np.isfinite(values).all():
        raise DataError(f"timeseries feature '{name}': preprocessing.fill_value must be one or more numbers "
                        f"written like a cell, got {text!r}")
    return values


def _filled(values: np.ndarray, lengths: np.ndarray, missing: np.ndarray, fill: np.ndarray):
    """Values and lengths with every missing row replaced by the fill series."""
    lengths = np.where(missing, len(fill), lengths)
    from_fill = np.repeat(missing, lengths)
    out = np.empty(len(from_fill), dtype=np.float64)
    out[~from_fill] = values
    out[from_fill] = np.tile(fill, int(missing.sum()))
    return out, lengths


def _truncated(values: np.ndarray, lengths: np.ndarray, max_length: int, side: str):
    """Each row cut to max_length values, keeping its start (right) or its end (left)."""
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    position = np.arange(len(values)) - starts  # of each value within its row
    if side == "left":
        position = np.repeat(lengths, lengths) - 1 - position  # counted from the row's end
    return values[position < max_length], np.minimum(lengths, max_length)


@register_feature_type("timeseries")
class TimeseriesFeature:
    preprocessing_schema = TimeseriesPreprocessing
    default_encoder = "parallel_cnn"
    default_decoder = None
    default_loss = None
    default_metrics = ()

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict:
        _fill_series(settings, name)  # an unusable fill value is reported before training
        values, _, missing = parse_number_lists(column, settings["delimiter"], name, "timeseries")
        if missing.all():
            raise DataError(f"timeseries feature '{name}': every value in the training split is missing")
        std = float(values.std())
        return {"normalization": settings["normalization"], "mean": float(values.mean()),
                "std": std if std > 0 else 1.0}

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> Ragged:
        values, lengths, missing = parse_number_lists(column, settings["delimiter"], name, "timeseries")
        values, lengths = _filled(values, lengths, missing, _fill_series(settings, name))
        long = lengths > settings["max_length"]
        if long.any():
            logger.info("timeseries feature '%s': %d of %d rows cut to max_length %d values (%s side)", name,
                        long.sum(), len(lengths), settings["max_length"], settings["truncation_side"])
            values, lengths = _truncated(values, lengths, settings["max_length"], settings["truncation_side"])
        if metadata["normalization"] == "zscore":
            values = (values - metadata["mean"]) / metadata["std"]
        return Ragged.from_lengths(values.astype(np.float32), lengths, pad_value=np.nan)

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {}


__all__ = ["TimeseriesFeature"]
