"""Vectors: a fixed number of floats per row, written '0.1 2 -3' (or as a list / numpy array).

Every row has the width of the training rows; a row of another width is an error naming it. The
column is float32 [N, D], optionally standardised per dimension with training statistics (and
predictions scaled back).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch
from marshmallow import fields, validate

from framework.config import fields as f
from framework.errors import DataError
from framework.features.base import describe_rows, missing_mask
from framework.registry import register_feature_type


def DELIMITER() -> fields.Field:
    return fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1),
                         metadata={"doc": "what separates the values in a cell (default: any whitespace)"})


class VectorPreprocessing(f.Schema):
    missing_value_strategy = f.Choice(["fill_with_const", "fill_with_mean", "drop_row"], "fill_with_mean",
                                      doc="what replaces a missing vector (outputs default to drop_row)")
    fill_value = f.Float(0.0, doc="the value of every dimension used by fill_with_const")
    delimiter = DELIMITER()
    normalization = f.Choice(["zscore", None], None,
                             doc="zscore: standardise each dimension with training statistics")


def _number_lists(column: pd.Series, missing: np.ndarray, delimiter: str | None) -> pa.Array:
    """A list of values (text or numbers) per row, null where the cell is missing."""
    present = np.flatnonzero(~missing)
    first = column.iloc[present[0]] if len(present) else None
    if isinstance(first, (list, tuple, np.ndarray)):
        try:  # pyarrow reads numpy arrays and lists of numbers in C
            return pa.array(column.where(~missing, None).to_numpy(dtype=object), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed cells: every one as text, errors found below
            pass
    text = pa.array(column.astype("string").where(~missing, None), type=pa.string())
    if delimiter is None:
        return pc.utf8_split_whitespace(text)
    return pc.split_pattern(text, pattern=delimiter)


def _as_floats(tokens: pa.Array) -> np.ndarray:
    """float64 values, NaN where a token is not a number."""
    if pa.types.is_floating(tokens.type) or pa.types.is_integer(tokens.type):
        return tokens.to_numpy(zero_copy_only=False).astype(np.float64)
    try:
        return pc.cast(tokens, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # some token is not a number: NaN marks which, to name its rows
        strings = pd.Series(tokens.to_numpy(zero_copy_only=False), dtype=object).astype(str)
        return pd.to_numeric(strings, errors="coerce").to_numpy(dtype=np.float64)


def parse_number_lists(column: pd.Series, delimiter: str | None, name: str,
                       type_name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(float64 values of the present rows in order, each row's length, missing mask).

    A cell with no values is missing; a value that is not a finite number is an error naming its rows.
    """
    missing = missing_mask(column)
    lists = _number_lists(column, missing, delimiter)
    rows = pc.list_parent_indices(lists)
    tokens = pc.list_flatten(lists)
    if pa.types.is_string(tokens.type) or pa.types.is_large_string(tokens.type):
        tokens = pc.utf8_trim_whitespace(tokens)
        keep = pc.not_equal(tokens, "")
        tokens, rows = tokens.filter(keep), rows.filter(keep)
    rows = rows.to_numpy().astype(np.int64)
    values = _as_floats(tokens)
    bad = ~np.isfinite(values)
    if bad.any():
        where = np.zeros(len(column), dtype=bool)
        where[rows[bad]] = True
        raise DataError(f"{type_name} feature '{name}' has values that are not finite numbers in "
                        f"{describe_rows(column, where)}; write each cell as numbers separated by "
                        f"{'whitespace' if delimiter is None else repr(delimiter)}")
    lengths = np.bincount(rows, minlength=len(column))
    return values, lengths, missing | (lengths == 0)


def _check_width(column: pd.Series, lengths: np.ndarray, missing: np.ndarray, width: int, name: str) -> None:
    wrong = ~missing & (lengths != width)
    if wrong.any():
        found = " or ".join(map(str, np.unique(lengths[wrong])))
        raise DataError(f"vector feature '{name}': every vector must have {width} values (the most common "
                        f"width in training); found {found} values in {describe_rows(column, wrong)}")


@register_feature_type("vector")
class VectorFeature:
    preprocessing_schema = VectorPreprocessing
    default_encoder = "dense"
    default_decoder = "projector"
    default_loss = "mse"
    default_metrics = ("loss", "mse", "mae", "r2", "cosine_similarity")

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict:
        values, lengths, missing = parse_number_lists(column, settings["delimiter"], name, "vector")
        if missing.all():
            raise DataError(f"vector feature '{name}': every value in the training split is missing")
        widths, counts = np.unique(lengths[~missing], return_counts=True)
        width = int(widths[np.argmax(counts)])  # the usual width; rows of any other are named
        _check_width(column, lengths, missing, width, name)
        matrix = values.reshape(-1, width)
        mean, std = matrix.mean(axis=0), matrix.std(axis=0)
        fill = mean if settings["missing_value_strategy"] != "fill_with_const" else np.full(width, settings["fill_value"])
        return {"size": width, "normalization": settings["normalization"], "fill_value": fill.tolist(),
                "mean": mean.tolist(), "std": np.where(std > 0, std, 1.0).tolist()}

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> np.ndarray:
        values, lengths, missing = parse_number_lists(column, settings["delimiter"], name, "vector")
        _check_width(column, lengths, missing, metadata["size"], name)
        matrix = np.empty((len(column), metadata["size"]), dtype=np.float64)
        matrix[~missing] = values.reshape(-1, metadata["size"])
        matrix[missing] = metadata["fill_value"]
        if metadata["normalization"] == "zscore":
            matrix = (matrix - np.asarray(metadata["mean"])) / np.asarray(metadata["std"])
        return matrix.astype(np.float32)

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {"input_size": metadata["size"]}

    @staticmethod
    def output_context(metadata: dict) -> dict:
        return {"num_outputs": metadata["size"]}

    @staticmethod
    def unscale(values: torch.Tensor, metadata: dict) -> torch.Tensor:
        if metadata["normalization"] != "zscore":
            return values
        std = torch.tensor(metadata["std"], dtype=values.dtype, device=values.device)
        return values * std + torch.tensor(metadata["mean"], dtype=values.dtype, device=values.device)

    @staticmethod
    def predict(logits: torch.Tensor, metadata: dict, settings: dict) -> dict[str, torch.Tensor]:
        return {"predictions": VectorFeature.unscale(logits.float(), metadata)}

    @staticmethod
    def metric_target(target: torch.Tensor, metadata: dict) -> torch.Tensor:
        return VectorFeature.unscale(target.float(), metadata)

    @staticmethod
    def postprocess(arrays: dict[str, np.ndarray], metadata: dict, name: str) -> dict:
        """Each row's predicted vector as a list of floats, in the units of the data."""
        predictions = np.empty(len(arrays["predictions"]), dtype=object)
        for row, vector in enumerate(arrays["predictions"].tolist()):  # a list per row: no vectorised form
            predictions[row] = vector
        return {f"{name}_predictions": predictions}


__all__ = ["VectorFeature", "parse_number_lists"]
