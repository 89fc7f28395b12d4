"""What the CLI shows and writes: metric tables and prediction files."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from framework import atomic
from framework.data.readers import extension
from framework.errors import FrameworkError

WRITERS = {
    ".csv": lambda frame, path: frame.to_csv(path, index=False),
    ".tsv": lambda frame, path: frame.to_csv(path, index=False, sep="\t"),
    ".parquet": lambda frame, path: frame.to_parquet(path, index=False),
    ".json": lambda frame, path: frame.to_json(path, orient="records"),
    ".jsonl": lambda frame, path: frame.to_json(path, orient="records", lines=True),
}


def format_metrics(title: str, metrics: dict[str, dict[str, float]]) -> str:
    lines = [f"{title}:"]
    width = max(len(name) for name in metrics)
    for output, values in metrics.items():
        shown = "  ".join(f"{metric} {value:.4f}" for metric, value in values.items())
        lines.append(f"  {output:<{width}}  {shown}")
    return "\n".join(lines)


def write_frame(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    path = Path(path)
    writer = WRITERS.get(extension(path))
    if writer is None:
        raise FrameworkError(f"output file '{path}' has an unsupported format; use one of {', '.join(sorted(WRITERS))}")
    with atomic.atomic_path(path) as tmp:
        writer(frame, tmp)
