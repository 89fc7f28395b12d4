"""Config paths of searched parameters: `trainer.learning_rate`, `input_features.<name>.encoder.<key>`,
`input_features[0].encoder.<key>`, `trainer.optimizer.betas[1]`.

A path is checked against the resolved config, where every setting is explicit, and a sampled value
is written into the user's raw config, so the trial's config resolves the way the user's own would
(defaults of a changed encoder type come from that type, not from the old one).
"""
from __future__ import annotations

import copy
import re
from typing import Any, Iterator

from framework.errors import FrameworkError

FEATURE_LISTS = ("input_features", "output_features")
_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def parse(path: str) -> list[str | int] | None:
    """The keys and list indices of `path`, or None when it is not a well-formed path."""
    if not isinstance(path, str) or not path:
        return None
    tokens: list[str | int] = []
    rebuilt = ""
    for match in _TOKEN.finditer(path):
        index, key = match.groups()
        if key is not None:
            rebuilt += ("." if rebuilt else "") + key
            tokens.append(key)
        else:
            rebuilt += f"[{index}]"
            tokens.append(int(index))
    if rebuilt != path or not tokens or isinstance(tokens[0], int):
        return None
    return tokens


def _feature_index(features: list, name: str) -> int | None:
    for index, feature in enumerate(features):
        if isinstance(feature, dict) and feature.get("name") == name:
            return index
    return None


def _step(container: Any, token: str | int, parent_key: Any) -> tuple[bool, Any]:
    """(found, value) of one step into the resolved config; a feature list is indexed by name too."""
    if isinstance(container, dict) and isinstance(token, str):
        return (token in container), container.get(token)
    if isinstance(container, (list, tuple)):  # the resolver keeps some pairs as tuples (optimizer betas)
        if isinstance(token, str) and parent_key in FEATURE_LISTS:
            index = _feature_index(container, token)
            return index is not None, None if index is None else container[index]
        if isinstance(token, int) and token < len(container):
            return True, container[token]
    return False, None


def exists(config: dict, tokens: list[str | int]) -> bool:
    value, parent = config, None
    for token in tokens:
        found, value_next = _step(value, token, parent)
        if not found:
            return False
        value, parent = value_next, token
    return True


def all_paths(config: Any, prefix: str = "", parent: Any = None) -> Iterator[str]:
    """Every path into the resolved config (features by name): the candidates of a misspelled one."""
    if isinstance(config, dict):
        for key, value in config.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from all_paths(value, path, key)
    elif isinstance(config, list) and parent in FEATURE_LISTS:
        for feature in config:
            if isinstance(feature, dict) and isinstance(feature.get("name"), str):
                path = f"{prefix}.{feature['name']}"
                yield path
                yield from all_paths(feature, path)


def assign(raw: dict, resolved: dict, tokens: list[str | int], value: Any) -> None:
    """Writes `value` at `tokens` into the raw config, in place.

    A missing mapping on the way is created empty (its defaults stay the resolver's to fill); a
    component given by name alone (`encoder: dense`) becomes `{type: dense}`; a missing list is
    copied from the resolved config so one of its items can be replaced.
    """
    node, resolved_node, parent = raw, resolved, None
    for depth, token in enumerate(tokens):
        last = depth == len(tokens) - 1
        if isinstance(node, list) and isinstance(token, str) and parent in FEATURE_LISTS:
            token = _feature_index(node, token)
        _, resolved_next = _step(resolved_node, token, parent)
        if last:
            node[token] = copy.deepcopy(value)
            return
        child = node[token] if isinstance(node, list) else node.get(token)
        if isinstance(child, str):
            child = {"type": child}
        elif child is None:
            child = list(copy.deepcopy(resolved_next)) if isinstance(resolved_next, (list, tuple)) else {}
        if not isinstance(child, (dict, list)):
            raise FrameworkError(f"cannot set '{join(tokens)}': '{join(tokens[:depth + 1])}' is {child!r}")
        node[token] = child
        node, resolved_node, parent = child, resolved_next, token


def join(tokens: list[str | int]) -> str:
    text = ""
    for token in tokens:
        text += f"[{token}]" if isinstance(token, int) else ("." if text else "") + token
    return text
