"""User-facing errors: anything the user can fix by changing their config or data.

The CLI prints these without a traceback and exits 2; every other exception is a bug and keeps
its traceback.
"""
from __future__ import annotations

from dataclasses import dataclass


class FrameworkError(Exception):
    """Base class of every error caused by the user's input rather than by a bug."""


class DataError(FrameworkError):
    """The dataset cannot be used as the config describes it."""


class WriteError(FrameworkError):
    """A file could not be written (disk full, no permission): the environment, not a bug."""


class ModelDirError(FrameworkError):
    """A directory given as a saved model is not one, or is from an incompatible version."""


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(FrameworkError):
    """Every problem found in a config, reported at once, each with its key path."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        if count == 1 and not self.problems[0].path:  # about the config as a whole (unreadable file ...)
            super().__init__(self.problems[0].message)
            return
        header = "Invalid config: 1 problem" if count == 1 else f"Invalid config: {count} problems"
        super().__init__(header + "\n" + "\n".join(f"  - {p}" for p in self.problems))
