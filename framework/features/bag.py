"""Bags of labels: a set whose labels keep their counts ('a b a' holds a twice). Input only.

The vocabulary and settings are the set type's; a row becomes its distinct ids with their counts,
a `Ragged` column of int64 (id, count) pairs padded with (0, 0) per batch.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from framework.data.ragged import Ragged
from framework.features.set import PAD_ID, SetPreprocessing, fit_vocabulary, label_ids
from framework.registry import register_feature_type


@register_feature_type("bag")
class BagFeature:
    preprocessing_schema = SetPreprocessing  # tokenizer, vocabulary and missing values alike
    default_encoder = "embed"
    default_decoder = None
    default_loss = None
    default_metrics = ()

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict:
        return fit_vocabulary(column, settings, name, "bag")

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> Ragged:
        rows, ids = label_ids(column, settings, metadata)
        size = len(metadata["vocab"])
        distinct, counts = np.unique(rows * size + ids, return_counts=True)  # sorted by row, then id
        lengths = np.bincount(distinct // size, minlength=len(column))
        pairs = np.stack([distinct % size, counts], axis=1).astype(np.int64)
        return Ragged.from_lengths(pairs, lengths, pad_value=PAD_ID)

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {"vocab_size": len(metadata["vocab"])}


__all__ = ["BagFeature"]
