"""Sets of labels: each cell lists labels ('red blue', 'a,b' or a list), kept once each.

The vocabulary is `<PAD>`=0, `<UNK>`=1, then the training labels by how many rows hold them. A row
becomes the sorted ids of its distinct labels (a `Ragged` column, padded with 0 per batch). As an
output, the decoder gives one logit per vocabulary entry; a label is predicted when its sigmoid
probability reaches the output feature's `threshold` (default 0.5).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from framework.config import fields as f
from framework.data.ragged import Ragged
from framework.errors import DataError
from framework.features.base import as_strings, missing_mask
from framework.registry import register_feature_type

PAD, UNKNOWN = "<PAD>", "<UNK>"
PAD_ID, UNKNOWN_ID = 0, 1
SEPARATORS = {"space": None, "comma": ",", "semicolon": ";", "pipe": "|", "underscore": "_"}
DEFAULT_THRESHOLD = 0.5


class SetPreprocessing(f.Schema):
    missing_value_strategy = f.Choice(["fill_with_const", "drop_row"], "fill_with_const",
                                      doc="what replaces a missing value (outputs default to drop_row)")
    fill_value = f.Str("", doc="the labels used by fill_with_const, written like a cell ('' is the empty set)")
    tokenizer = f.Choice(SEPARATORS, "space",
                         doc="what separates labels in a cell: space (any whitespace), comma, semicolon, "
                             "pipe or underscore")
    lowercase = f.Bool(False, doc="lowercase labels before building the vocabulary")
    most_common = f.Int(10000, min=1, doc="vocabulary cap: rarer labels map to <UNK>")
    min_frequency = f.Int(1, min=1, doc="labels in fewer training rows map to <UNK>")


def _holds_lists(column: pd.Series, missing: np.ndarray) -> bool:
    """Whether cells are lists of labels (a DataFrame built in Python, a parquet list column)."""
    present = np.flatnonzero(~missing)
    return len(present) > 0 and isinstance(column.iloc[present[0]], (list, tuple, set, frozenset, np.ndarray))


def _split(text: pa.Array, tokenizer: str) -> pa.Array:
    separator = SEPARATORS[tokenizer]
    return pc.utf8_split_whitespace(text) if separator is None else pc.split_pattern(text, pattern=separator)


def label_lists(column: pd.Series, settings: dict, fill_value: str) -> pa.Array:
    """One list of label strings per row (lists may be empty); missing cells hold `fill_value`'s labels."""
    missing = missing_mask(column)
    if not _holds_lists(column, missing):
        text = as_strings(column).where(~missing, fill_value)
        return _split(pa.array(text, type=pa.string()), settings["tokenizer"])
    # no vectorised way to read Python lists: one pass over the cells
    fill = _split(pa.array([fill_value]), settings["tokenizer"])[0].as_py()
    cells = [fill if gone else [str(label) for label in cell] for cell, gone in zip(column, missing)]
    return pa.array(cells, type=pa.list_(pa.string()))


def label_tokens(column: pd.Series, settings: dict, fill_value: str) -> tuple[np.ndarray, pa.Array]:
    """(row of each label, label) over the whole column: stripped, non-empty, lowercased if asked."""
    lists = label_lists(column, settings, fill_value)
    rows = pc.list_parent_indices(lists)
    tokens = pc.utf8_trim_whitespace(pc.list_flatten(lists))
    keep = pc.not_equal(tokens, "")
    tokens, rows = tokens.filter(keep), rows.filter(keep)
    if settings["lowercase"]:
        tokens = pc.utf8_lower(tokens)
    return rows.to_numpy().astype(np.int64), tokens


def fit_vocabulary(column: pd.Series, settings: dict, name: str, type_name: str) -> dict:
    """The vocabulary, each entry's count of training rows holding it, and the fill value."""
    if missing_mask(column).all():
        raise DataError(f"{type_name} feature '{name}': every value in the training split is missing")
    fill = settings["fill_value"] if settings["missing_value_strategy"] == "fill_with_const" else ""
    rows, tokens = label_tokens(column, settings, fill)
    pairs = pd.DataFrame({"row": rows, "label": tokens.to_numpy(zero_copy_only=False)}).drop_duplicates()
    counts = pairs["label"].value_counts()
    counts = counts[(counts >= settings["min_frequency"]) & ~counts.index.isin([PAD, UNKNOWN])]
    # most frequent first, ties by label, so the vocabulary does not depend on row order
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")[: settings["most_common"]]
    vocab = [PAD, UNKNOWN, *counts.index]
    return {"vocab": vocab, "frequencies": [0, 0, *counts.astype(np.int64).tolist()], "fill_value": fill}


def label_ids(column: pd.Series, settings: dict, metadata: dict) -> tuple[np.ndarray, np.ndarray]:
    """(row, id) of every label occurrence; labels outside the vocabulary are <UNK>."""
    rows, tokens = label_tokens(column, settings, metadata["fill_value"])
    # a hash lookup in Arrow's C++ kernels, as for category labels
    ids = pc.index_in(tokens, value_set=pa.array(metadata["vocab"], type=pa.string()))
    return rows, pc.fill_null(ids, UNKNOWN_ID).to_numpy().astype(np.int64)


def multi_hot(ids: torch.Tensor, size: int, dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """[rows, ids] padded label ids -> [rows, size] indicators; the <PAD> column is always off."""
    hot = torch.zeros(ids.shape[0], size, dtype=dtype, device=ids.device)
    hot.scatter_(1, ids.long(), torch.ones(ids.shape, dtype=dtype, device=ids.device))
    hot[:, PAD_ID] = 0
    return hot


@register_feature_type("set")
class SetFeature:
    preprocessing_schema = SetPreprocessing
    default_encoder = "embed"
    default_decoder = "classifier"
    default_loss = "sigmoid_cross_entropy"
    default_metrics = ("loss", "jaccard", "precision", "recall", "f1")

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict:
        return fit_vocabulary(column, settings, name, "set")

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> Ragged:
        rows, ids = label_ids(column, settings, metadata)
        size = len(metadata["vocab"])
        distinct = np.unique(rows * size + ids)  # sorted by row, then id; repeats (and unknowns) once
        lengths = np.bincount(distinct // size, minlength=len(column))
        return Ragged.from_lengths(distinct % size, lengths, pad_value=PAD_ID)

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {"vocab_size": len(metadata["vocab"])}

    @staticmethod
    def output_context(metadata: dict) -> dict:
        return {"num_outputs": len(metadata["vocab"]), "vocab": metadata["vocab"],
                "frequencies": metadata["frequencies"]}

    @staticmethod
    def predict(logits: torch.Tensor, metadata: dict, settings: dict) -> dict[str, torch.Tensor]:
        probabilities = torch.sigmoid(logits.float())
        predictions = probabilities >= settings.get("threshold", DEFAULT_THRESHOLD)
        predictions[:, PAD_ID] = False
        return {"predictions": predictions, "probabilities": probabilities}

    @staticmethod
    def metric_target(target: torch.Tensor, metadata: dict) -> torch.Tensor:
        return multi_hot(target, len(metadata["vocab"]))

    @staticmethod
    def postprocess(arrays: dict[str, np.ndarray], metadata: dict, name: str) -> dict:
        """Each row's predicted labels as a list, and a probability column per label."""
        vocab = np.asarray(metadata["vocab"], dtype=object)
        rows, ids = np.nonzero(arrays["predictions"])
        ends = np.cumsum(np.bincount(rows, minlength=len(arrays["predictions"])))[:-1]
        predictions = np.empty(len(arrays["predictions"]), dtype=object)
        for row, labels in enumerate(np.split(vocab[ids], ends)):  # a list per row: no vectorised form
            predictions[row] = labels.tolist()
        columns = {f"{name}_predictions": predictions}
        for index, label in enumerate(vocab[UNKNOWN_ID:], start=UNKNOWN_ID):
            columns[f"{name}_probabilities_{label}"] = arrays["probabilities"][:, index]
        return columns


__all__ = ["SetFeature", "fit_vocabulary", "label_ids", "multi_hot"]
