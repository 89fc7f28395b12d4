"""Name -> class registries for every pluggable component.

A component registers itself with a decorator next to its class; the decorator is the only list of
components there is. The registries import their component packages the first time a name is
looked up, so `framework` never imports `encoders/` at import time and the packages can import
`framework` freely. User code registers its own classes the same way.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class Entry:
    """One registered component: its class, its config schema and the data types it serves."""

    name: str
    cls: Any
    schema: Any
    types: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


class Registry:
    """Entries by name; one name may serve several data types with different classes
    (a `dense` encoder for numbers and another for categories), never one type twice."""

    def __init__(self, kind: str, packages: Iterable[str] = ()):
        self.kind = kind
        self._packages = tuple(packages)
        self._entries: dict[str, list[Entry]] = {}
        self._loaded = False

    def register(self, name: str, *, schema: Any = None, types: Iterable[str] = (), **extra) -> Callable:
        types = tuple(types)

        def decorate(obj):
            entries = self._entries.setdefault(name, [])
            for existing in entries:
                clash = not types or not existing.types or set(types) & set(existing.types)
                if existing.cls is not obj and clash:
                    qualname = getattr(existing.cls, "__qualname__", existing.cls)
                    raise ValueError(f"{self.kind} '{name}' is already registered by {qualname}")
            entries[:] = [e for e in entries if e.cls is not obj]
            entries.append(Entry(name, obj, schema, types, dict(extra)))
            return obj

        return decorate

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for package in self._packages:
                importlib.import_module(package)

    def get(self, name: str, data_type: str | None = None) -> Entry:
        """The entry of `name`, the one serving `data_type` where the name serves several."""
        self._load()
        entries = self._entries[name]
        if data_type is None:
            return entries[0]
        for entry in entries:
            if not entry.types or data_type in entry.types:
                return entry
        raise KeyError(f"{self.kind} '{name}' does not serve {data_type}")

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def types_of(self, name: str) -> list[str]:
        self._load()
        return sorted({t for entry in self._entries.get(name, []) for t in entry.types})

    def names(self, data_type: str | None = None) -> list[str]:
        """Registered names, those serving `data_type` only when it is given."""
        self._load()
        return sorted(name for name, entries in self._entries.items()
                      if data_type is None or any(not e.types or data_type in e.types for e in entries))

    def entries(self) -> list[Entry]:
        self._load()
        return [entry for name in sorted(self._entries) for entry in self._entries[name]]


feature_types = Registry("feature type", ["framework.features"])
encoders = Registry("encoder", ["encoders"])
combiners = Registry("combiner", ["combiners"])
decoders = Registry("decoder", ["decoders"])
losses = Registry("loss", ["framework.losses"])
metrics = Registry("metric", ["framework.metrics"])
optimizers = Registry("optimizer", ["framework.training.optimizers"])

register_feature_type = feature_types.register
register_encoder = encoders.register
register_combiner = combiners.register
register_decoder = decoders.register
register_loss = losses.register
register_metric = metrics.register
register_optimizer = optimizers.register
