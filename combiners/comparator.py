"""Compares two entities, each a group of input features: are they alike, which one wins ..."""
from __future__ import annotations

from typing import Sequence

import torch
from marshmallow import fields
from torch import nn

from framework.config import fields as f
from framework.config.problems import closest, join
from framework.errors import ConfigError, Problem
from framework.models.encoded import Encoded
from framework.models.fc_stack import FCStack, FCStackSchema
from framework.registry import register_combiner


def _names(doc: str) -> fields.Field:
    return fields.List(fields.String(), load_default=list, metadata={"doc": doc})


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def entity_problems(entity_1: Sequence[str], entity_2: Sequence[str], input_names: Sequence[str],
                    path: str = "combiner") -> list[Problem]:
    """Every problem with the comparator's entities, given the model's input feature names: each entity
    names at least one input, only inputs, each once; no input is in both, every input is in one."""
    problems = []
    inputs = f"the inputs are {_quoted(input_names)}"
    for key, names in (("entity_1", entity_1), ("entity_2", entity_2)):
        if not names:
            problems.append(Problem(join(path, key), f"must name at least one input feature; {inputs}"))
        unknown = [name for name in names if name not in input_names]
        if unknown:
            near = [f"'{closest(name, input_names)[0]}' for '{name}'" for name in unknown if closest(name, input_names)]
            hint = f" (did you mean {' and '.join(near)}?)" if near else ""
            problems.append(Problem(join(path, key), f"{_quoted(unknown)}: no such input feature{hint}; {inputs}"))
        repeated = sorted({name for name in names if list(names).count(name) > 1})
        if repeated:
            problems.append(Problem(join(path, key), f"names {_quoted(repeated)} more than once"))
    both = [name for name in entity_1 if name in entity_2]
    if both:
        problems.append(Problem(join(path, "entity_2"), f"{_quoted(both)} also in entity_1; an input feature "
                                                        "belongs to one entity only"))
    neither = [name for name in input_names if name not in entity_1 and name not in entity_2]
    if neither and entity_1 and entity_2:
        problems.append(Problem(path, f"input features {_quoted(neither)}: in neither entity_1 nor entity_2; "
                                      "add each to one of them (the comparator would ignore them)"))
    return problems


class ComparatorSchema(FCStackSchema):
    num_fc_layers = f.Int(1, min=0, doc="number of fully connected layers after the comparison")
    output_size = f.Int(128, min=1, doc="width of each fully connected layer")
    entity_1 = _names("the input features making up the first entity (required)")
    entity_2 = _names("the input features making up the second entity (required)")
    entity_size = f.Int(64, min=1, doc="width each entity is projected to before the comparison (one fully "
                                       "connected layer with the stack's activation, norm and dropout)")
    include_difference = f.Bool(False, doc="also compare by the signed difference e1 - e2 (order-sensitive)")


@register_combiner("comparator", schema=ComparatorSchema)
class ComparatorCombiner(nn.Module):
    """Two entities, each the concatenation of its input features projected to `entity_size`, compared
    as [e1, e2, e1 * e2, |e1 - e2|] (and e1 - e2 with `include_difference`), then an fc stack.

    `entity_1` and `entity_2` are lists of input feature names: each non-empty, disjoint, and together
    every input feature. They are checked against the model's inputs when the combiner is built (a
    ConfigError lists every problem); `entity_problems` runs the same checks for a config.
    """

    def __init__(self, input_sizes: dict[str, int], *, num_fc_layers: int = 1, output_size: int = 128,
                 activation: str = "relu", norm: str | None = None, dropout: float = 0.0, residual: bool = False,
                 entity_1: list[str] = [], entity_2: list[str] = [], entity_size: int = 64,  # noqa: B006 (never mutated)
                 include_difference: bool = False):
        super().__init__()
        problems = entity_problems(entity_1, entity_2, list(input_sizes))
        if problems:
            raise ConfigError(problems)
        self.entities = (list(entity_1), list(entity_2))
        layer = {"activation": activation, "norm": norm, "dropout": dropout}
        self.projections = nn.ModuleList(
            FCStack(sum(input_sizes[name] for name in names), num_fc_layers=1, output_size=entity_size, **layer)
            for names in self.entities)
        self.include_difference = include_difference
        compared = entity_size * (5 if include_difference else 4)
        self.stack = FCStack(compared, num_fc_layers=num_fc_layers, output_size=output_size, residual=residual, **layer)
        self.output_size = self.stack.output_size

    def forward(self, encoded: dict[str, Encoded]) -> torch.Tensor:
        e1, e2 = (projection(torch.cat([encoded[name].pooled for name in names], dim=-1))
                  for projection, names in zip(self.projections, self.entities))
        parts = [e1, e2, e1 * e2, (e1 - e2).abs()] + ([e1 - e2] if self.include_difference else [])
        return self.stack(torch.cat(parts, dim=-1))
