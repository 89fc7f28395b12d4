"""Reading a dataset from a DataFrame or a file, chosen by the file's extension."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from framework.errors import DataError


def _read_csv(path: Path, sep: str = ",") -> pd.DataFrame:
    try:  # the pyarrow engine parses in parallel, in C++; the C engine accepts more odd files
        frame = pd.read_csv(path, sep=sep, engine="pyarrow")
    except Exception:  # noqa: BLE001 - any pyarrow parse failure falls back to the C parser
        frame = pd.read_csv(path, sep=sep)
    # pandas renames a repeated header name ('a', 'a.1'); the names as written are put back so the
    # duplicate check sees them instead of a feature silently reading the first of two columns
    header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0].tolist()
    if len(set(header)) < len(header) == len(frame.columns):
        frame.columns = header
    return frame


READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": _read_csv,
    ".tsv": lambda path: _read_csv(path, sep="\t"),
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
    ".json": lambda path: pd.read_json(path, orient="records"),
    ".jsonl": lambda path: pd.read_json(path, lines=True),
    ".ndjson": lambda path: pd.read_json(path, lines=True),
}
COMPRESSIONS = (".gz", ".bz2", ".zst", ".xz")


def extension(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSIONS:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def _decode_bytes(frame: pd.DataFrame, role: str, keep: Iterable[str] = ()) -> None:
    """Columns a reader left as raw bytes become text if they are UTF-8; otherwise a DataError names
    the column and the first row that is not (rather than a UnicodeDecodeError deep in preprocessing).
    Columns in `keep` hold binary data (encoded images) and stay bytes."""
    for name in frame.columns[frame.dtypes == object]:
        if name in keep:
            continue
        column = frame[name]
        if pd.api.types.infer_dtype(column, skipna=True) not in ("bytes", "mixed"):
            continue
        decoded = []
        for position, value in enumerate(column):
            if isinstance(value, bytes):
                try:
                    value = value.decode("utf-8")
                except UnicodeDecodeError:
                    raise DataError(f"{role} column '{name}' is not valid UTF-8 text (row position {position}: "
                                    f"{value!r}); save the file as UTF-8") from None
            decoded.append(value)
        frame[name] = pd.Series(decoded, index=frame.index, dtype=object)


def read_dataset(source: Any, role: str = "dataset", keep_bytes: Iterable[str] = ()) -> pd.DataFrame:
    """A DataFrame from a DataFrame or a path; every failure is a DataError naming the file."""
    if isinstance(source, pd.DataFrame):
        frame = source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise DataError(f"{role} file '{path}' does not exist")
        if path.is_dir():
            raise DataError(f"{role} '{path}' is a directory, not a data file")
        reader = READERS.get(extension(path))
        if reader is None:
            raise DataError(f"{role} file '{path}' has an unsupported format '{extension(path) or path.name}'; "
                            f"supported: {', '.join(sorted(READERS))} (optionally compressed: {', '.join(COMPRESSIONS)})")
        try:
            frame = reader(path)
        except (ValueError, OSError, UnicodeDecodeError) as error:
            raise DataError(f"{role} file '{path}' could not be read: {error}") from None
    else:
        raise DataError(f"{role} must be a pandas DataFrame or a file path, got {type(source).__name__}")
    _decode_bytes(frame, role, set(keep_bytes))
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"{role} has duplicated column names: {duplicated}")
    return frame
