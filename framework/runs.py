"""Run directories: results/<name>_<n>/, created atomically, found again for resume."""
from __future__ import annotations

import os
import re
from pathlib import Path

from framework.errors import FrameworkError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_name(name: str) -> None:
    if not SAFE_NAME.match(name) or ".." in name:
        raise FrameworkError(f"experiment name '{name}' must be letters, digits, '_', '-' or '.', with no path "
                             "separators or '..'")


def _numbered(output_dir: Path, name: str) -> list[tuple[int, Path]]:
    pattern = re.compile(rf"^{re.escape(name)}_(\d+)$")
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in output_dir.iterdir() if (m := pattern.match(p.name)) and p.is_dir()]
    return sorted(found)


def new_run_dir(output_dir: str | os.PathLike, name: str) -> Path:
    check_name(name)
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FrameworkError(f"output directory '{output_dir}' cannot be created: {error.strerror}") from None
    if not os.access(output_dir, os.W_OK):
        raise FrameworkError(f"output directory '{output_dir}' is not writable")
    existing = _numbered(output_dir, name)
    number = existing[-1][0] + 1 if existing else 0
    while True:
        candidate = output_dir / f"{name}_{number}"
        try:
            candidate.mkdir()  # atomic: two runs starting at once get different numbers
            return candidate
        except FileExistsError:
            number += 1


def latest_run_dir(output_dir: str | os.PathLike, name: str) -> Path | None:
    """The newest run of `name` (the one the user last started), with or without a checkpoint yet.

    A run killed before its first checkpoint is resumed by starting it over in the same directory,
    not by reviving an older run that may have finished.
    """
    check_name(name)
    for _, path in reversed(_numbered(Path(output_dir), name)):
        if (path / "config.yaml").is_file():
            return path
    return None
