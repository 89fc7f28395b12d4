"""Prompts: a template with {column} slots filled per row, an optional task, few-shot examples, and the
tokenizer's chat template when the model has one.

A prompt ends where the response begins; the response is never part of the template, so the same
prompt serves training (prompt + response) and generation (prompt alone).
"""
from __future__ import annotations

import string

import numpy as np
import pandas as pd

from framework.features.base import missing_mask


def slots(template: str) -> list[str]:
    """The {names} a template fills, in order, each once; a malformed template raises ValueError."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    for name in names:
        if not name or not name.isidentifier():
            raise ValueError(f"'{{{name}}}' is not a slot: slots name an input feature, like {{question}} "
                             "(write {{ and }} for literal braces)")
    return list(dict.fromkeys(names))


def default_template(input_names: list[str], task: str | None) -> str:
    """The task (when there is one), then the input alone, or each input on its own line with its name."""
    body = f"{{{input_names[0]}}}" if len(input_names) == 1 else "\n".join(f"{n}: {{{n}}}" for n in input_names)
    return ("{task}\n\n" if task else "") + body


def texts(column: pd.Series) -> list[str]:
    """A column as strings, missing values as empty text."""
    missing = missing_mask(column)
    return np.where(missing, "", column.astype(str).to_numpy(dtype=object)).tolist()


def render(frame: pd.DataFrame, prompt: dict, inputs: list[dict]) -> list[str]:
    """The filled template of every row (without few-shot examples or chat wrapping)."""
    columns = {feature["name"]: texts(frame[feature["column"]]) for feature in inputs}
    template, task = prompt["template"], prompt["task"] or ""
    names = slots(template)
    return [template.format_map({"task": task, **{name: columns[name][row] for name in names if name != "task"}})
            for row in range(len(frame))]


def render_example(example: dict, prompt: dict, inputs: list[dict], output: dict) -> tuple[str, str]:
    """(prompt, response) of one few-shot example given as a mapping of feature names or columns."""
    frame = pd.DataFrame([{f["column"]: example.get(f["column"], example.get(f["name"], "")) for f in inputs}])
    response = example.get(output["column"], example.get(output["name"], ""))
    return render(frame, prompt, inputs)[0], str(response)


def assemble(prompts: list[str], shots: list[list[tuple[str, str]]], tokenizer, use_chat: bool) -> list[str]:
    """Each row's final prompt text: its few-shot examples first, then the row, in chat form or plain."""
    if use_chat:
        return [tokenizer.apply_chat_template(
            [turn for example, answer in row_shots for turn in ({"role": "user", "content": example},
                                                                {"role": "assistant", "content": answer})]
            + [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
            for prompt, row_shots in zip(prompts, shots)]
    return ["".join(f"{example}{answer}\n\n" for example, answer in row_shots) + prompt
            for prompt, row_shots in zip(prompts, shots)]


def uses_chat_template(setting, tokenizer) -> bool:
    if setting == "auto":
        return bool(getattr(tokenizer, "chat_template", None))
    if setting and not getattr(tokenizer, "chat_template", None):
        from framework.errors import FrameworkError

        raise FrameworkError("prompt.chat_template is true but the tokenizer has no chat template; set it to false "
                             "or auto")
    return bool(setting)
