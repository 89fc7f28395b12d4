"""Search spaces: `{space: loguniform, lower: 1e-4, upper: 1e-1}` and the others, each registered with its
schema right above its class.

A space draws a value through an Optuna trial, names the values the config is checked with before
the search starts (its bounds, its categories), and lists its points when it is finite, for the grid
sampler. Categories that are not plain scalars (a list of layers, a mapping) travel through Optuna as
JSON text, the form its storage keeps, and come back as the values the user wrote.
"""
from __future__ import annotations

import json
import math
from typing import Any

from marshmallow import fields, validate

from framework.config import fields as f
from framework.registry import Registry

spaces = Registry("search space")
SCALARS = (type(None), bool, int, float, str)


class Categorical:
    """Values Optuna can store as a categorical parameter, and the user's values they stand for."""

    def __init__(self, values: list):
        self.values = list(values)
        plain = all(isinstance(v, SCALARS) for v in self.values)
        self.encoded = self.values if plain else [json.dumps(v, sort_keys=True) for v in self.values]

    def suggest(self, trial: Any, name: str) -> Any:
        return self.decode(trial.suggest_categorical(name, self.encoded))

    def decode(self, stored: Any) -> Any:
        return self.values[self.encoded.index(stored)]


def _bounds_problems(lower: float, upper: float) -> list[tuple[str, str]]:
    if upper <= lower:
        return [("upper", f"must be greater than lower ({lower}), got {upper}")]
    return []


class RangeSchema(f.Schema):
    lower = fields.Float(required=True, allow_nan=False, metadata={"doc": "smallest value"})
    upper = fields.Float(required=True, allow_nan=False, metadata={"doc": "largest value"})


@spaces.register("uniform", schema=RangeSchema)
class Uniform:
    """A float drawn uniformly from [lower, upper]."""

    def __init__(self, lower: float, upper: float):
        self.lower, self.upper = lower, upper

    def problems(self) -> list[tuple[str, str]]:
        return _bounds_problems(self.lower, self.upper)

    def probes(self) -> list:
        return [self.lower, self.upper]

    def grid(self) -> list | None:
        return None

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.lower, self.upper)

    def decode(self, stored: Any) -> Any:
        return stored


@spaces.register("loguniform", schema=RangeSchema)
class LogUniform(Uniform):
    """A float whose logarithm is uniform on [log lower, log upper]: learning rates, weight decay."""

    def problems(self) -> list[tuple[str, str]]:
        if self.lower <= 0:
            return [("lower", f"must be > 0 for a log scale, got {self.lower}")]
        return _bounds_problems(self.lower, self.upper)

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.lower, self.upper, log=True)


class FloatSchema(RangeSchema):
    step = f.Float(None, min=0.0, min_inclusive=False, doc="values are lower + k * step")
    log = f.Bool(False, doc="draw on a log scale (not with step)")


@spaces.register("float", schema=FloatSchema)
class Float(Uniform):
    """A float in [lower, upper], on a log scale or on a grid of `step`."""

    def __init__(self, lower: float, upper: float, step: float | None, log: bool):
        super().__init__(lower, upper)
        self.step, self.log = step, log

    def problems(self) -> list[tuple[str, str]]:
        if self.log and self.step is not None:
            return [("log", "cannot be combined with step")]
        if self.log and self.lower <= 0:
            return [("lower", f"must be > 0 for a log scale, got {self.lower}")]
        return _bounds_problems(self.lower, self.upper)

    def grid(self) -> list | None:
        if self.step is None:
            return None
        count = math.floor((self.upper - self.lower) / self.step + 1e-9) + 1
        return [round(self.lower + k * self.step, 12) for k in range(count)]

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.lower, self.upper, step=self.step, log=self.log)


class IntSchema(f.Schema):
    lower = f.Int(required=True, doc="smallest value")
    upper = f.Int(required=True, doc="largest value (included)")
    step = f.Int(1, min=1, doc="values are lower + k * step")
    log = f.Bool(False, doc="draw on a log scale (step 1 only)")


@spaces.register("int", schema=IntSchema)
class Int:
    """An integer in [lower, upper] (both included): layer sizes, layer counts."""

    def __init__(self, lower: int, upper: int, step: int = 1, log: bool = False):
        self.lower, self.upper, self.step, self.log = lower, upper, step, log

    def problems(self) -> list[tuple[str, str]]:
        if self.log and self.step != 1:
            return [("log", "cannot be combined with step")]
        if self.log and self.lower <= 0:
            return [("lower", f"must be > 0 for a log scale, got {self.lower}")]
        return _bounds_problems(self.lower, self.upper)

    def probes(self) -> list:
        return [self.lower, self.upper]

    def grid(self) -> list | None:
        return list(range(self.lower, self.upper + 1, self.step))

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.lower, self.upper, step=self.step, log=self.log)

    def decode(self, stored: Any) -> Any:
        return stored


class RandIntSchema(f.Schema):
    lower = f.Int(required=True, doc="smallest value")
    upper = f.Int(required=True, doc="largest value (included)")


@spaces.register("randint", schema=RandIntSchema)
class RandInt(Int):
    """An integer drawn uniformly from [lower, upper], both included."""

    def __init__(self, lower: int, upper: int):
        super().__init__(lower, upper)


class ChoiceSchema(f.Schema):
    categories = fields.List(fields.Raw(allow_none=True), required=True, validate=validate.Length(min=1),
                             metadata={"doc": "the values to choose from: numbers, strings, lists, mappings"})


@spaces.register("choice", schema=ChoiceSchema)
class Choice:
    """One of `categories`, unordered: a list of layers, an encoder type, an optimizer section."""

    def __init__(self, categories: list):
        self.categorical = Categorical(categories)

    def problems(self) -> list[tuple[str, str]]:
        return []

    def probes(self) -> list:
        return list(self.categorical.values)

    def grid(self) -> list | None:
        return list(self.categorical.values)

    def suggest(self, trial: Any, name: str) -> Any:
        return self.categorical.suggest(trial, name)

    def decode(self, stored: Any) -> Any:
        return self.categorical.decode(stored)


class GridSchema(f.Schema):
    values = fields.List(fields.Raw(allow_none=True), required=True, validate=validate.Length(min=1),
                         metadata={"doc": "the points of the grid (any sampler draws one of them)"})


@spaces.register("grid", schema=GridSchema)
class Grid(Choice):
    """Each of `values` is a grid point: the grid sampler tries them all, other samplers choose one."""

    def __init__(self, values: list):
        super().__init__(values)


def build(settings: dict) -> Any:
    """The space of a resolved `{space: name, ...settings}` parameter."""
    entry = spaces.get(settings["space"])
    return entry.cls(**{k: v for k, v in settings.items() if k != "space"})


def suggest(trial: Any, name: str, space: Any, on_grid: bool) -> Any:
    """Under the grid sampler every space is drawn as the categorical of its points, the form the
    sampler's own search space holds."""
    if on_grid:
        return Categorical(space.grid()).suggest(trial, name)
    return space.suggest(trial, name)


def decode(stored: Any, space: Any, on_grid: bool) -> Any:
    """The user's value of a parameter as Optuna stored it."""
    return Categorical(space.grid()).decode(stored) if on_grid else space.decode(stored)
