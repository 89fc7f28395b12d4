"""Constructing a registered component from its resolved settings and data-derived context.

A component's positional parameters are filled from the context (sizes and vocabularies known
only after preprocessing); its keyword-only parameters are exactly its schema's fields.
"""
from __future__ import annotations

import inspect
from typing import Any

from framework.registry import Entry


def context_parameters(cls: Any) -> list[str]:
    return [name for name, p in inspect.signature(cls).parameters.items()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def setting_parameters(cls: Any) -> list[str]:
    return [name for name, p in inspect.signature(cls).parameters.items() if p.kind == p.KEYWORD_ONLY]


def build(entry: Entry, context: dict, settings: dict) -> Any:
    positional = {name: context[name] for name in context_parameters(entry.cls)}
    return entry.cls(**positional, **{k: v for k, v in settings.items() if k != "type"})
