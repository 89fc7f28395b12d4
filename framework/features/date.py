"""Dates and times: parsed once, then kept as their calendar components. Input only.

The column is int64 [N, 9]: year, month (1-12), day (1-31), weekday (0 = Monday), yearday (1-366),
hour, minute, second, second of the day. Values with a UTC offset are converted to UTC; values
without one are read as they are. Without `datetime_format` the format is inferred from the first
value, and values written another way are parsed one by one (set the format for day-first dates).
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from framework.config import fields as f
from framework.errors import DataError
from framework.features.base import as_strings, describe_rows, missing_mask
from framework.registry import register_feature_type

logger = logging.getLogger(__name__)
COMPONENTS = ("year", "month", "day", "weekday", "yearday", "hour", "minute", "second", "second_of_day")


class DatePreprocessing(f.Schema):
    missing_value_strategy = f.Choice(["fill_with_const", "fill_with_mode", "drop_row"], "fill_with_const",
                                      doc="what replaces a missing date")
    fill_value = f.Str("1970-01-01", doc="the date used by fill_with_const")
    datetime_format = f.Str(None, doc="strftime format of the values, e.g. '%d/%m/%Y' (default: inferred)")


def _to_datetime(text: pd.Series, datetime_format: str | None) -> pd.Series:
    with warnings.catch_warnings():  # "could not infer format": the value-by-value parse is the fallback
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(text, format=datetime_format, errors="coerce", utc=True)
        retry = parsed.isna() & text.notna()
        if datetime_format is None and retry.any():
            logger.info("%d date values do not follow the format of the first one; parsed one by one", retry.sum())
            parsed[retry] = pd.to_datetime(text[retry], format="mixed", errors="coerce", utc=True)
    return parsed


def parse_dates(column: pd.Series, settings: dict, name: str) -> tuple[pd.Series, np.ndarray]:
    """UTC timestamps (NaT where missing) and the missing mask; unparsable values are an error."""
    missing = missing_mask(column)
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        parsed = pd.to_datetime(column, utc=True)
    else:
        parsed = _to_datetime(as_strings(column).str.strip().where(~missing, None), settings["datetime_format"])
    bad = parsed.isna().to_numpy() & ~missing
    if bad.any():
        fmt = settings["datetime_format"]
        problem = (f"do not match preprocessing.datetime_format {fmt!r}" if fmt
                   else "could not be read as dates; fix them, or set preprocessing.datetime_format")
        raise DataError(f"date feature '{name}': {describe_rows(column, bad)} {problem}")
    return parsed.reset_index(drop=True), missing


def _components(parsed: pd.Series) -> np.ndarray:
    dates = parsed.dt
    columns = [dates.year, dates.month, dates.day, dates.day_of_week, dates.day_of_year, dates.hour, dates.minute,
               dates.second, dates.hour * 3600 + dates.minute * 60 + dates.second]
    return np.stack([c.to_numpy(dtype=np.int64) for c in columns], axis=1)


@register_feature_type("date")
class DateFeature:
    preprocessing_schema = DatePreprocessing
    default_encoder = "embed"
    default_decoder = None
    default_loss = None
    default_metrics = ()

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict:
        parsed, missing = parse_dates(column, settings, name)
        if missing.all():
            raise DataError(f"date feature '{name}': every value in the training split is missing")
        if settings["missing_value_strategy"] == "fill_with_const":
            fill = _to_datetime(pd.Series([settings["fill_value"]]), None)[0]
            if pd.isna(fill):
                raise DataError(f"date feature '{name}': preprocessing.fill_value {settings['fill_value']!r} "
                                "is not a date")
        else:  # the most common date; what drop_row falls back on at predict time too
            fill = parsed[~missing].mode().iloc[0]
        return {"fill_value": fill.isoformat()}

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> np.ndarray:
        parsed, missing = parse_dates(column, settings, name)
        parsed[missing] = pd.Timestamp(metadata["fill_value"])
        return _components(parsed)

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {}


__all__ = ["COMPONENTS", "DateFeature", "parse_dates"]
