"""Run directories: results/<name>_<n>/, created atomically, found again for resume.

An experiment name from a user never produces a path outside the output directory.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterator

import yaml

from framework import atomic
from framework.errors import FrameworkError

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CONFIG = "config.yaml"
# settings a resumed run may change: they do not touch what is computed (the CLI's --no-progress sets one)
RESUMABLE_CHANGES = {"trainer.progress_bar"}


def check_name(name: str) -> None:
    if not SAFE_NAME.fullmatch(name) or ".." in name:
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
    """The newest run of `name` that recorded its config, with or without a checkpoint yet.

    A run killed before its first checkpoint is resumed by starting it over in the same directory,
    not by reviving an older run that may have finished. A directory killed between its creation and
    its config.yaml holds no work, so it never hides the run before it.
    """
    check_name(name)
    for _, path in reversed(_numbered(Path(output_dir), name)):
        if (path / CONFIG).is_file():
            return path
    return None


def _flat(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every setting; a list's items as path[i]. An empty dict or list is a value
    of its own, so a setting changed to or from one is seen."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _flat(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _flat(item, f"{path}[{index}]")
    else:
        yield path, value


def changed_settings(saved: Any, current: Any, ignore: set[str] | frozenset[str] = frozenset()
                     ) -> list[tuple[str, Any, Any]]:
    """(path, saved value, current value) of each setting that differs between two nested configs,
    by path, leaving out the paths in `ignore`; a setting only one of them has is None in the other."""
    before, now = dict(_flat(saved)), dict(_flat(current))
    return [(key, before.get(key), now.get(key)) for key in sorted(before.keys() | now.keys())
            if before.get(key) != now.get(key) and key not in ignore]


def _check_same_config(run_dir: Path, config_text: str) -> None:
    """A resumed run continues with the config it started with; anything else would be a different run."""
    try:
        saved = yaml.safe_load((run_dir / CONFIG).read_text())
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise FrameworkError(f"cannot resume '{run_dir}': its {CONFIG} is unreadable ({error})") from None
    changed = changed_settings(saved, yaml.safe_load(config_text), RESUMABLE_CHANGES)
    if changed:
        shown = ", ".join(f"{key} ({before!r} in the run, {now!r} now)" for key, before, now in changed[:5])
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        raise FrameworkError(f"cannot resume '{run_dir}' with a different config: {shown}{more}; resume with the "
                             f"run's own {run_dir / CONFIG}, or start a new run without resume")


def open_run(output_dir: str | os.PathLike, name: str, config_text: str, resume: bool) -> Path:
    """The run directory to train in: with `resume`, the newest run of `name` (checked to have the
    same config), else a new one. Its config.yaml is written first, so every run records its config."""
    run_dir = latest_run_dir(output_dir, name) if resume else None
    if run_dir is None:
        run_dir = new_run_dir(output_dir, name)
    elif (run_dir / CONFIG).is_file():
        _check_same_config(run_dir, config_text)
    if not (run_dir / CONFIG).is_file():  # a new run, or one killed before it wrote its config
        atomic.write_text(run_dir / CONFIG, config_text)
    return run_dir
