"""LLM examples as token arrays: prompt + response + EOS, the prompt masked out of the loss.

Each split becomes ragged columns padded per batch: `input_ids`, `attention_mask` and the output's
labels (-100 on the prompt and on padding). With packing, the training split's examples are packed
first-fit-decreasing into rows of at most max_sequence_length tokens, with `position_ids` restarting
at each example; transformers turns restarts into a block-diagonal causal mask, so no example attends
to another. The prompts alone (left-padded, for generation) and the response texts are kept for
generated-text metrics.

Truncation rule for an example longer than max_sequence_length: the response keeps up to
max_sequence_length - min(prompt length, max_sequence_length // 2) tokens (its end, EOS included, is
cut first); the prompt fills the rest, losing its beginning (the part nearest the response stays).
Every example keeps response tokens, so none silently drops out of the loss; the counts are reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from framework.data import notices
from framework.data.dataset import ArrayDataset
from framework.data.pipeline import check_columns, drop_missing, split_frames
from framework.data.ragged import Ragged
from framework.data.readers import read_dataset
from framework.data.split import SPLITS
from framework.errors import DataError
from framework.features.base import missing_mask
from framework.llm import prompts as P

IGNORE = -100


@dataclass
class Encoded:
    """One split's examples as token ids (lists per row)."""

    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    responses: list[str] = field(default_factory=list)


@dataclass
class LLMSplit:
    """What training and evaluation read of a split: the batched arrays, and for generation the prompts
    (left-padded ids) and the target texts."""

    arrays: ArrayDataset
    prompts: Ragged
    responses: list[str]

    def __len__(self) -> int:
        return len(self.arrays)


def _features(config: dict) -> list[dict]:
    return [{**f, "preprocessing": {"missing_value_strategy": "drop_row"}} for f in config["output_features"]]


def prompt_texts(config: dict, frame: pd.DataFrame, tokenizer, shots: list[list[tuple[str, str]]] | None = None) -> list[str]:
    prompt = config["prompt"]
    rows = P.render(frame, prompt, config["input_features"])
    if shots is None:
        fixed = [P.render_example(example, prompt, config["input_features"], config["output_features"][0])
                 for example in prompt["examples"] or []]
        shots = [fixed] * len(rows)
    return P.assemble(rows, shots, tokenizer, P.uses_chat_template(prompt["chat_template"], tokenizer))


def encode(config: dict, frame: pd.DataFrame, tokenizer, with_responses: bool, shots=None) -> Encoded:
    texts = prompt_texts(config, frame, tokenizer, shots)
    chat = P.uses_chat_template(config["prompt"]["chat_template"], tokenizer)
    # a chat template writes its own special tokens (BOS included) into the text
    prompt_ids = tokenizer(texts, add_special_tokens=not chat)["input_ids"]
    if not with_responses:
        return Encoded(prompt_ids, [[] for _ in prompt_ids])
    output = config["output_features"][0]
    responses = P.texts(frame[output["column"]])
    eos = tokenizer.eos_token_id
    response_ids = [ids + [eos] for ids in tokenizer(responses, add_special_tokens=False)["input_ids"]]
    return Encoded(prompt_ids, response_ids, responses)


def truncate(prompt: list[int], response: list[int], limit: int) -> tuple[list[int], list[int]]:
    """The rule in the module docstring."""
    if len(prompt) + len(response) <= limit:
        return prompt, response
    response = response[:limit - min(len(prompt), limit // 2)]
    room = limit - len(response)
    return (prompt[len(prompt) - room:] if room else []), response


def _count_truncated(name: str, encoded: Encoded, limit: int) -> None:
    rows = prompts = responses = longest = 0
    for prompt, response in zip(encoded.prompt_ids, encoded.response_ids):
        if len(prompt) + len(response) > limit:
            kept_prompt, kept_response = truncate(prompt, response, limit)
            rows += 1
            prompts += len(kept_prompt) < len(prompt)
            responses += len(kept_response) < len(response)
            longest = max(longest, len(prompt) + len(response))
    if rows:
        notices.count(f"llm:{name}:truncated",
                      lambda t: f"{t['rows']} of {t['of']} examples were longer than max_sequence_length {limit} "
                                f"tokens (the longest had {t['max_longest']}): {t['prompts']} lost the start of their "
                                f"prompt, {t['responses']} the end of their response (and its EOS)",
                      rows=rows, of=len(encoded.prompt_ids), prompts=prompts, responses=responses, max_longest=longest)


def _ragged(rows: list[list[int]], pad: int, pad_left: bool = False) -> Ragged:
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    values = np.fromiter((i for r in rows for i in r), dtype=np.int64, count=int(lengths.sum()))
    return Ragged.from_lengths(values, lengths, pad_value=pad, pad_left=pad_left)


def examples_arrays(encoded: Encoded, output_name: str, limit: int, pad_id: int) -> ArrayDataset:
    """One example per row: input_ids, attention_mask, labels (the prompt masked)."""
    ids, labels = [], []
    for prompt, response in zip(encoded.prompt_ids, encoded.response_ids):
        prompt, response = truncate(prompt, response, limit)
        ids.append(prompt + response)
        labels.append([IGNORE] * len(prompt) + response)
    mask = [[1] * len(row) for row in ids]
    return ArrayDataset({"input_ids": _ragged(ids, pad_id), "attention_mask": _ragged(mask, 0),
                         output_name: _ragged(labels, IGNORE)})


def packed_arrays(encoded: Encoded, output_name: str, limit: int, pad_id: int) -> ArrayDataset:
    """Examples packed first-fit-decreasing into rows of at most `limit` tokens; position_ids restart
    at each example (padding gets position 0, so it forms its own blocks)."""
    examples = [truncate(p, r, limit) for p, r in zip(encoded.prompt_ids, encoded.response_ids)]
    order = sorted(range(len(examples)), key=lambda i: -(len(examples[i][0]) + len(examples[i][1])))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        size = len(examples[i][0]) + len(examples[i][1])
        target = next((r for r, free in enumerate(room) if free >= size), None)
        if target is None:
            rows.append([])
            room.append(limit)
            target = len(rows) - 1
        rows[target].append(i)
        room[target] -= size
    ids, labels, positions = [], [], []
    for members in rows:
        row_ids, row_labels, row_positions = [], [], []
        for i in sorted(members):  # the dataset's order inside a row
            prompt, response = examples[i]
            row_ids += prompt + response
            row_labels += [IGNORE] * len(prompt) + response
            row_positions += list(range(len(prompt) + len(response)))
        ids.append(row_ids)
        labels.append(row_labels)
        positions.append(row_positions)
    return ArrayDataset({"input_ids": _ragged(ids, pad_id), "position_ids": _ragged(positions, 0),
                         output_name: _ragged(labels, IGNORE)})


def max_length(config: dict, tokenizer, model_config=None) -> int:
    limit = config["trainer"]["max_sequence_length"]
    if limit is not None:
        return limit
    candidates = [getattr(model_config, "max_position_embeddings", None),
                  tokenizer.model_max_length if tokenizer.model_max_length < 10 ** 8 else None]
    return min([c for c in candidates if c] or [2048])


def read_splits(config: dict, dataset: Any, validation: Any = None, test: Any = None) -> dict[str, pd.DataFrame]:
    features = config["input_features"] + _features(config)
    frames = {"train": read_dataset(dataset), "validation": None, "test": None}
    for role, source in (("validation", validation), ("test", test)):
        if source is not None:
            frames[role] = read_dataset(source, role=f"{role} dataset")
    output = config["output_features"][0]
    for role, frame in frames.items():
        if frame is None:
            continue
        name = "dataset" if role == "train" else f"{role} dataset"
        check_columns(frame, features, name)
        responses = frame[output["column"]]
        empty = missing_mask(responses) | (responses.astype(str).str.strip() == "").to_numpy()
        if empty.all():
            raise DataError(f"the response column '{output['column']}' of output feature '{output['name']}' is empty "
                            f"in every row of the {name}: an LLM fine-tune learns from prompt/response pairs")
    splits = split_frames(frames, config["preprocessing"], config["seed"],
                          explicit=validation is not None or test is not None)
    splits = {role: drop_missing(frame, _features(config), f"{role} split") if len(frame) else frame
              for role, frame in splits.items()}
    if len(splits["train"]) == 0:
        raise DataError("the training split is empty; check preprocessing.split and the dataset's size")
    return splits


def prepare_llm_training(config: dict, tokenizer, dataset: Any, validation: Any = None, test: Any = None,
                         model_config=None) -> tuple[dict[str, LLMSplit], dict]:
    """The splits for training and evaluation, and the metadata saved beside the model."""
    frames = read_splits(config, dataset, validation, test)
    limit = max_length(config, tokenizer, model_config)
    output = config["output_features"][0]["name"]
    pad = tokenizer.pad_token_id
    result = {}
    with notices.collected():
        for role in SPLITS:
            frame = frames[role]
            encoded = encode(config, frame, tokenizer, with_responses=True) if len(frame) else Encoded([], [])
            _count_truncated(output, encoded, limit)
            pack = config["trainer"]["packing"] and role == "train"
            arrays = (packed_arrays if pack else examples_arrays)(encoded, output, limit, pad)
            prompts = _ragged([p[-limit:] for p in encoded.prompt_ids], pad, pad_left=True)
            result[role] = LLMSplit(arrays, prompts, encoded.responses)
    metadata = {"max_sequence_length": limit, "pad_id": pad, "eos_id": tokenizer.eos_token_id}
    return result, metadata


def prepare_llm_inference(config: dict, metadata: dict, tokenizer, dataset: Any, with_targets: bool) -> LLMSplit:
    frame = read_dataset(dataset)
    features = config["input_features"] + (_features(config) if with_targets else [])
    check_columns(frame, features, "dataset")
    if with_targets:
        frame = drop_missing(frame, _features(config), "dataset")
        if frame.empty:
            raise DataError("every row of the dataset is missing a response")
    limit, output = metadata["max_sequence_length"], config["output_features"][0]["name"]
    encoded = encode(config, frame, tokenizer, with_responses=with_targets)
    arrays = examples_arrays(encoded, output, limit, metadata["pad_id"]) if with_targets else ArrayDataset({})
    prompts = _ragged([p[-limit:] for p in encoded.prompt_ids], metadata["pad_id"], pad_left=True)
    return LLMSplit(arrays, prompts, encoded.responses)
