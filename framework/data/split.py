"""Splitting rows into train / validation / test, before anything is fitted."""
from __future__ import annotations

import numpy as np
import pandas as pd

from framework.config import fields as f
from framework.errors import DataError

SPLITS = ("train", "validation", "test")
FIXED_NAMES = {"0": 0, "1": 1, "2": 2, "train": 0, "training": 0, "validation": 1, "val": 1, "valid": 1,
               "test": 2}


class SplitSchema(f.Schema):
    type = f.Choice(["random", "fixed", "stratify"], "random",
                    doc="random, fixed (a column names each row's split) or stratify (keep label proportions)")
    probabilities = f.FloatList([0.7, 0.1, 0.2], doc="train, validation, test fractions (sum to 1)")
    column = f.Str(None, doc="fixed: the column with 0/1/2 or train/validation/test; stratify: the label column")


def split_rows(df: pd.DataFrame, settings: dict, seed: int) -> np.ndarray:
    """An array giving each row's split: 0 train, 1 validation, 2 test."""
    kind = settings["type"]
    if kind == "fixed":
        names = df[settings["column"]].astype("string").str.strip().str.lower()
        codes = names.map(FIXED_NAMES)
        bad = codes.isna().to_numpy()
        if bad.any():
            seen = sorted(set(df[settings["column"]][bad].astype(str).tolist()))[:5]
            raise DataError(f"split column '{settings['column']}': {int(bad.sum())} rows have values other than "
                            f"0/1/2 or train/validation/test (e.g. {seen})")
        return codes.to_numpy(dtype=np.int8)
    rng = np.random.default_rng(seed)
    probabilities = np.asarray(settings["probabilities"], dtype=float)
    if kind == "random":
        return _assign(rng.permutation(len(df)), probabilities, len(df))
    result = np.empty(len(df), dtype=np.int8)
    labels = df[settings["column"]].astype("string").fillna("<NA>")
    for _, rows in labels.groupby(labels, sort=True).indices.items():
        result[rows] = _assign(rng.permutation(len(rows)), probabilities, len(rows))
    return result


def _assign(order: np.ndarray, probabilities: np.ndarray, n: int) -> np.ndarray:
    bounds = np.round(np.cumsum(probabilities) * n).astype(int)
    result = np.empty(n, dtype=np.int8)
    start = 0
    for split, end in enumerate(bounds):
        result[order[start:end]] = split
        start = end
    return result
