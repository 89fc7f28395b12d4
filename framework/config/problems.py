"""Collects config problems with their key paths and turns marshmallow's errors into them."""
from __future__ import annotations

import difflib
from typing import Any, Iterable

import marshmallow

from framework.errors import ConfigError, Problem


def join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def closest(name: Any, candidates: Iterable[str], n: int = 3) -> list[str]:
    candidates = sorted(set(candidates))
    return difflib.get_close_matches(str(name), candidates, n=n, cutoff=0.5)


def did_you_mean(name: Any, candidates: Iterable[str]) -> str:
    candidates = sorted(set(candidates))
    near = closest(name, candidates)
    if near:
        return "did you mean " + " or ".join(f"'{c}'" for c in near) + "?"
    return "valid: " + ", ".join(candidates) if candidates else "none are valid here"


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


class Problems:
    """An accumulator: validation keeps going after the first problem, then raises them all."""

    def __init__(self):
        self.items: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(Problem(path, message))

    def unknown_name(self, path: str, kind: str, name: Any, valid: Iterable[str], extra: str = "") -> None:
        self.add(path, f"unknown {kind} '{name}'{extra}; {did_you_mean(name, valid)}")

    def expect_mapping(self, path: str, value: Any) -> bool:
        if isinstance(value, dict):
            return True
        self.add(path, f"expected a mapping, got {_type_name(value)} ({value!r})")
        return False

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)

    def load(self, schema_cls: type[marshmallow.Schema], data: Any, path: str) -> dict | None:
        """Validates one section; returns it with defaults filled, or None after adding problems."""
        if data is None:
            data = {}
        if not self.expect_mapping(path, data):
            return None
        schema = schema_cls()
        known = {key: value for key, value in data.items() if key in schema.fields}
        for key in data:
            if key not in known:
                self.add(join(path, key), f"unknown key; {did_you_mean(key, schema.fields)}")
        try:
            return schema.load(known)
        except marshmallow.ValidationError as error:
            self._add_marshmallow(error.messages, data, schema, path)
            return None

    def _add_marshmallow(self, messages: Any, data: Any, schema: marshmallow.Schema | None, path: str) -> None:
        if isinstance(messages, list):
            for message in messages:
                self.add(path, self._describe(message, data, schema, path))
            return
        for key, sub in messages.items():
            if key == "_schema":
                self._add_marshmallow(sub, data, schema, path)
                continue
            value = data.get(key) if isinstance(data, dict) else (
                data[key] if isinstance(data, list) and isinstance(key, int) and key < len(data) else None)
            sub_schema = None
            if schema is not None and not isinstance(key, int):
                field = schema.fields.get(key)
                sub_schema = getattr(field, "schema", None)
            if isinstance(sub, list):
                for message in sub:
                    if message == "Unknown field.":
                        valid = list(schema.fields) if schema is not None else []
                        self.add(join(path, key), f"unknown key; {did_you_mean(key, valid)}")
                    else:
                        self.add(join(path, key), self._describe(message, value, None, path))
            else:
                self._add_marshmallow(sub, value, sub_schema, join(path, key))

    @staticmethod
    def _describe(message: str, value: Any, schema: Any, path: str) -> str:
        message = message.rstrip(".")
        message = message[:1].lower() + message[1:]
        if message.startswith("missing data for required field"):
            return "required key is missing"
        return f"{message} (got {value!r})"
