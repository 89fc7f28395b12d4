"""Warnings about the data that are counted across splits and said once.

Each split is transformed on its own, so a feature that truncates long rows would otherwise warn
three times with three partial counts. Inside `collected()`, `count()` adds to a running tally per
message and the totals are logged once when the block ends; outside it they are logged at once.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
from typing import Callable, Iterator

logger = logging.getLogger("framework.data")

# key -> (message built from the totals, the totals so far)
_Tally = dict[str, tuple[Callable[[dict], str], dict]]
_open: contextvars.ContextVar[_Tally | None] = contextvars.ContextVar("framework_notices", default=None)


def count(key: str, message: Callable[[dict], str], **totals: int) -> None:
    """Add `totals` (summed, or kept as the largest for names starting with `max_`) under `key`."""
    tally = _open.get()
    if tally is None:
        logger.warning(message(totals))
        return
    _, so_far = tally.setdefault(key, (message, {}))
    for name, value in totals.items():
        so_far[name] = max(so_far.get(name, value), value) if name.startswith("max_") else so_far.get(name, 0) + value


@contextlib.contextmanager
def collected() -> Iterator[None]:
    token = _open.set({})
    try:
        yield
        tally = _open.get()
    finally:
        _open.reset(token)
    for message, totals in tally.values():
        logger.warning(message(totals))
