"""Building blocks for config schemas: a strict Schema base and terse field constructors.

Components declare their schemas with these right above their classes. Every field has a default
(or is required), a type checked strictly, and range constraints declared as data.
"""
from __future__ import annotations

from typing import Any, Iterable

import marshmallow
from marshmallow import fields, validate

from framework.config.problems import closest


class Schema(marshmallow.Schema):
    """Unknown keys are errors; a schema's fields are the component's keyword arguments."""

    class Meta:
        unknown = marshmallow.RAISE


def _range(min_value, max_value, min_inclusive=True, max_inclusive=True) -> list:
    if min_value is None and max_value is None:
        return []
    return [
        validate.Range(
            min=min_value, max=max_value, min_inclusive=min_inclusive, max_inclusive=max_inclusive
        )
    ]


def Int(default: Any = None, *, min: int | None = None, max: int | None = None, allow_none=False,
        required=False, doc: str = "") -> fields.Field:
    kwargs = {} if required else {"load_default": default}
    return fields.Integer(strict=True, validate=_range(min, max), allow_none=allow_none or default is None,
                          required=required, metadata={"doc": doc}, **kwargs)


def Float(default: Any = None, *, min: float | None = None, max: float | None = None,
          min_inclusive=True, max_inclusive=True, allow_none=False, doc: str = "") -> fields.Field:
    return fields.Float(load_default=default, allow_nan=False,
                        validate=_range(min, max, min_inclusive, max_inclusive),
                        allow_none=allow_none or default is None, metadata={"doc": doc})


def Bool(default: bool, *, doc: str = "") -> fields.Field:
    return fields.Boolean(load_default=default, truthy={True}, falsy={False}, metadata={"doc": doc})


def Str(default: Any = None, *, required=False, doc: str = "") -> fields.Field:
    kwargs = {} if required else {"load_default": default}
    return fields.String(allow_none=default is None and not required, required=required,
                         metadata={"doc": doc}, **kwargs)


class _OneOf(validate.OneOf):
    """OneOf whose error names the closest valid choice of a misspelled string."""

    def __call__(self, value: Any) -> Any:
        try:
            return super().__call__(value)
        except marshmallow.ValidationError:
            near = closest(value, [str(c) for c in self.choices]) if isinstance(value, str) else []
            hint = "; did you mean " + " or ".join(f"'{c}'" for c in near) + "?" if near else ""
            raise marshmallow.ValidationError(f"must be one of: {self.choices_text}{hint}") from None


def Choice(options: Iterable[Any], default: Any, *, doc: str = "") -> fields.Field:
    options = list(options)
    return fields.Raw(load_default=default, allow_none=None in options,
                      validate=_OneOf(options), metadata={"doc": doc, "options": options})


def FloatList(default: Any = None, *, doc: str = "") -> fields.Field:
    return fields.List(fields.Float(allow_nan=False), load_default=default, allow_none=True,
                       metadata={"doc": doc})


def Mapping(default: Any = None, *, doc: str = "") -> fields.Field:
    return fields.Dict(load_default=default, allow_none=True, metadata={"doc": doc})


def Any_(default: Any = None, *, doc: str = "") -> fields.Field:
    return fields.Raw(load_default=default, allow_none=True, metadata={"doc": doc})


def defaults_of(schema_cls: type[Schema]) -> dict:
    """The fully defaulted settings of a schema (what an empty section resolves to)."""
    return schema_cls().load({})
