"""Predictions as a DataFrame: model outputs turned back into the user's labels and units."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from framework.data.pipeline import prepare_inference
from framework.models.ecd import ECD
from framework.training.evaluation import run_split


def predict_frame(module: ECD, config: dict, metadata: dict, dataset: Any, batch_size: int,
                  device: torch.device) -> pd.DataFrame:
    arrays, index = prepare_inference(config, metadata, dataset, with_targets=False)
    split = run_split(module, arrays, batch_size, device, with_targets=False)
    columns: dict[str, np.ndarray] = {}
    for name, feature in module.output_features.items():
        outputs = {key: value.cpu().numpy() for key, value in split.predictions[name].items()}
        columns.update(feature.kind.postprocess(outputs, feature.metadata, name))
    return pd.DataFrame(columns, index=index)
