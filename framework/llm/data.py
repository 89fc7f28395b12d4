"""LLM examples as token arrays: prompt + response + EOS, the prompt masked out of the loss.

Each split becomes ragged columns padded per batch to the batch's longest row: `input_ids`,
`attention_mask`, `position_ids` and the output's labels (-100 on the prompt and on padding). With
packing, the training split's examples are packed first-fit-decreasing into rows of at most
max_sequence_length tokens, with `position_ids` restarting at each example; transformers turns the
restarts into a block-diagonal causal mask (when the model keeps no KV cache, as training loads it), so
no example attends to another. The prompts alone (left-padded, for generation) and the response texts
are kept for generated-text metrics.

Truncation, for an example (prompt + response + EOS) longer than L = max_sequence_length tokens: each
side is guaranteed a share, the prompt min(its length, L // 2) tokens and the response (EOS counted)
min(its length, L - L // 2); what one side does not need, the other may use. The prompt loses its start
(the task and the first few-shot examples go before the row's own input, which sits next to the response);
the response loses its end, EOS first, since an answer cut short has no end to learn. A response longer than L
on its own thus keeps its first L - min(prompt length, L // 2) tokens, after the last min(prompt length,
L // 2) tokens of its prompt. No example drops out of the loss (L >= 2 leaves every response a token), and
the examples cut are counted over all splits and reported once: how many lost the start of their prompt,
how many the end of their response.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from framework.data import notices
from framework.data.dataset import ArrayDataset
from framework.data.pipeline import check_columns, split_frames
from framework.data.ragged import Ragged
from framework.data.readers import read_dataset
from framework.data.split import SPLITS
from framework.errors import DataError
from framework.features.base import describe_rows, missing_mask
from framework.llm import prompts as P

IGNORE = -100
logger = logging.getLogger(__name__)


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


def few_shots(config: dict, rendered: list[str], pool: P.ShotPool | None,
              exclude: np.ndarray | None = None) -> list[list[tuple[str, str]]]:
    """Each row's few-shot examples: the fixed ones, then the `retrieve` nearest training examples."""
    prompt = config["prompt"]
    fixed = [P.render_example(example, prompt, config["input_features"], config["output_features"][0])
             for example in prompt["examples"] or []]
    if not prompt["retrieve"] or pool is None:
        return [fixed] * len(rendered)
    return [fixed + pool.examples(row) for row in pool.nearest(rendered, prompt["retrieve"], exclude)]


def prompt_texts(config: dict, frame: pd.DataFrame, tokenizer, pool: P.ShotPool | None = None,
                 pool_source: bool = False) -> list[str]:
    """Every row's whole prompt as text: task, few-shot examples, the filled template, chat-wrapped when
    the chat template is used. `pool_source`: `frame` is what `pool` was fitted on, so no row retrieves
    itself (a row finds its own pool entry by its prompt and response)."""
    prompt = config["prompt"]
    rendered = P.render(frame, prompt, config["input_features"])
    exclude = None
    if pool_source and pool is not None:
        exclude = pool.positions(rendered, P.texts(frame[config["output_features"][0]["column"]]))
    chat = P.uses_chat_template(prompt["chat_template"], tokenizer)
    return P.assemble(rendered, few_shots(config, rendered, pool, exclude), tokenizer, chat, P.preamble(prompt))


def encode(config: dict, frame: pd.DataFrame, tokenizer, with_responses: bool, pool: P.ShotPool | None = None,
           pool_source: bool = False) -> Encoded:
    texts = prompt_texts(config, frame, tokenizer, pool, pool_source)
    # a chat template writes its own special tokens (BOS included) into the text
    chat = P.uses_chat_template(config["prompt"]["chat_template"], tokenizer)
    prompt_ids = tokenizer(texts, add_special_tokens=not chat)["input_ids"] if texts else []
    if not with_responses:
        return Encoded(prompt_ids, [[] for _ in prompt_ids])
    responses = P.texts(frame[config["output_features"][0]["column"]])
    tokenized = tokenizer(responses, add_special_tokens=False)["input_ids"] if responses else []
    return Encoded(prompt_ids, [ids + [tokenizer.eos_token_id] for ids in tokenized], responses)


def shot_pool(config: dict, frame: pd.DataFrame, tokenizer) -> P.ShotPool | None:
    """The training split's examples to retrieve from (None when the prompt retrieves none)."""
    if not config["prompt"]["retrieve"]:
        return None
    rendered = P.render(frame, config["prompt"], config["input_features"])
    return P.ShotPool(tokenizer).fit(rendered, P.texts(frame[config["output_features"][0]["column"]]))


def truncate(prompt: list[int], response: list[int], limit: int) -> tuple[list[int], list[int]]:
    """The rule in the module docstring: the prompt's end and the response's start survive."""
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
    """One example per row: input_ids, attention_mask, labels (the prompt masked), padded on the right to
    each batch's longest row. position_ids too, since a model trained with packing reads those instead of
    the mask in evaluation as well (padding, at position 0 after the example, attends only to itself)."""
    ids, labels = [], []
    for prompt, response in zip(encoded.prompt_ids, encoded.response_ids):
        prompt, response = truncate(prompt, response, limit)
        ids.append(prompt + response)
        labels.append([IGNORE] * len(prompt) + response)
    input_ids = _ragged(ids, pad_id)
    lengths, starts = input_ids.lengths, input_ids.offsets[:-1]
    mask = Ragged.from_lengths(np.ones(int(lengths.sum()), dtype=np.int64), lengths, pad_value=0)
    positions = Ragged.from_lengths(np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths),
                                    lengths, pad_value=0)
    return ArrayDataset({"input_ids": input_ids, "attention_mask": mask, "position_ids": positions,
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


def drop_empty_responses(frame: pd.DataFrame, config: dict, name: str) -> pd.DataFrame:
    """Rows without a response are left out, and named: an empty response would teach the model to answer
    with EOS alone. A dataset with no response at all is a mistake, not a thing to train on."""
    output = config["output_features"][0]
    responses = frame[output["column"]]
    empty = missing_mask(responses)
    what = f"the response column '{output['column']}' of output feature '{output['name']}'"
    if empty.all():
        raise DataError(f"{what} is empty in every row of the {name}: an LLM fine-tune learns from "
                        "prompt/response pairs")
    if empty.any():
        logger.warning("%s is empty in %s of the %s; those rows are left out of training and evaluation",
                       what, describe_rows(responses, empty), name)
        return frame[~empty]
    return frame


def read_splits(config: dict, dataset: Any, validation: Any = None, test: Any = None) -> dict[str, pd.DataFrame]:
    features = config["input_features"] + _features(config)
    frames = {"train": read_dataset(dataset), "validation": None, "test": None}
    for role, source in (("validation", validation), ("test", test)):
        if source is not None:
            frames[role] = read_dataset(source, role=f"{role} dataset")
    for role, frame in frames.items():
        if frame is not None:
            name = "dataset" if role == "train" else f"{role} dataset"
            check_columns(frame, features, name)
            frames[role] = drop_empty_responses(frame, config, name)
    splits = split_frames(frames, config["preprocessing"], config["seed"],
                          explicit=validation is not None or test is not None)
    if len(splits["train"]) == 0:
        raise DataError("the training split is empty; check preprocessing.split and the dataset's size")
    return splits


def prepare_llm_training(config: dict, tokenizer, dataset: Any, validation: Any = None, test: Any = None,
                         model_config=None) -> tuple[dict[str, LLMSplit], dict]:
    """The splits for training and evaluation, and the metadata saved beside the model: the length limit,
    and with `prompt.retrieve` the training examples retrieved from (their rendered prompts and responses,
    each distinct pair once, nothing else of the dataset)."""
    frames = read_splits(config, dataset, validation, test)
    limit = max_length(config, tokenizer, model_config)
    output = config["output_features"][0]["name"]
    pad = tokenizer.pad_token_id
    pool = shot_pool(config, frames["train"], tokenizer)
    result = {}
    with notices.collected():
        for role in SPLITS:
            encoded = encode(config, frames[role], tokenizer, True, pool, pool_source=role == "train")
            _count_truncated(output, encoded, limit)
            pack = config["trainer"]["packing"] and role == "train"
            arrays = (packed_arrays if pack else examples_arrays)(encoded, output, limit, pad)
            prompts = _ragged([p[-limit:] for p in encoded.prompt_ids], pad, pad_left=True)
            result[role] = LLMSplit(arrays, prompts, encoded.responses)
    metadata = {"max_sequence_length": limit, "pad_id": pad, "eos_id": tokenizer.eos_token_id,
                "retrieval": None if pool is None else pool.to_dict()}
    return result, metadata


def saved_pool(config: dict, metadata: dict, tokenizer) -> P.ShotPool | None:
    """The examples a trained model retrieves from. A model never trained has none: it predicts with the
    fixed examples alone, and says so."""
    if not config["prompt"]["retrieve"]:
        return None
    if not metadata.get("retrieval"):
        logger.warning("prompt.retrieve is %d but this model has no training set to retrieve examples from (it "
                       "was never trained); its prompts hold only the fixed prompt.examples",
                       config["prompt"]["retrieve"])
        return None
    state = metadata["retrieval"]
    for i, (known_state, known_tokenizer, pool) in enumerate(_FITTED_POOLS):
        if known_state is state and known_tokenizer is tokenizer:
            _FITTED_POOLS.insert(0, _FITTED_POOLS.pop(i))
            return pool
    pool = P.ShotPool.from_dict(state, tokenizer)
    _FITTED_POOLS.insert(0, (state, tokenizer, pool))
    del _FITTED_POOLS[4:]
    return pool


# the pools of the last few models that predicted: a model predicting again (every served request) reuses
# its fitted pool instead of tokenizing and weighting the whole training set again
_FITTED_POOLS: list[tuple[dict, Any, P.ShotPool]] = []


def _count_cut_prompts(encoded: Encoded, limit: int) -> None:
    cut = sum(len(p) > limit for p in encoded.prompt_ids)
    if cut:
        logger.warning("%d of %d prompts were longer than max_sequence_length %d tokens and lost their start "
                       "before generation", cut, len(encoded.prompt_ids), limit)


def prepare_llm_inference(config: dict, metadata: dict, tokenizer, dataset: Any, with_targets: bool) -> LLMSplit:
    frame = read_dataset(dataset)
    features = config["input_features"] + (_features(config) if with_targets else [])
    check_columns(frame, features, "dataset")
    if with_targets:
        frame = drop_empty_responses(frame, config, "dataset")
    limit, output = metadata["max_sequence_length"], config["output_features"][0]["name"]
    encoded = encode(config, frame, tokenizer, with_targets, saved_pool(config, metadata, tokenizer))
    if with_targets:
        _count_truncated(output, encoded, limit)
    else:
        _count_cut_prompts(encoded, limit)
    arrays = examples_arrays(encoded, output, limit, metadata["pad_id"]) if with_targets else ArrayDataset({})
    prompts = _ragged([p[-limit:] for p in encoded.prompt_ids], metadata["pad_id"], pad_left=True)
    return LLMSplit(arrays, prompts, encoded.responses)
