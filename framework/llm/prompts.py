"""Prompts: a template with {column} slots filled per row, an optional task, few-shot examples, and the
tokenizer's chat template when the model has one.

A prompt ends where the response begins; the response is never part of the template, so the same
prompt serves training (prompt + response) and generation (prompt alone). The task is said once, at the
very start (before any few-shot example), unless the template places it with a {task} slot.
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
    """The input alone, or each input on its own line with its name. The task is not a slot of it: `assemble`
    puts it once before the few-shot examples, which each fill the template again."""
    return f"{{{input_names[0]}}}" if len(input_names) == 1 else "\n".join(f"{n}: {{{n}}}" for n in input_names)


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


def preamble(prompt: dict) -> str:
    """The task said once before everything else, or nothing when the template places it itself."""
    task = prompt["task"] or ""
    return "" if "task" in slots(prompt["template"]) else task


def assemble(prompts: list[str], shots: list[list[tuple[str, str]]], tokenizer, use_chat: bool,
             task: str = "") -> list[str]:
    """Each row's final prompt text: the task, its few-shot examples, then the row, in chat form or plain.
    In chat form the task opens the first user turn rather than a system turn, which some chat templates
    (Gemma's) refuse."""
    lead = f"{task}\n\n" if task else ""
    if use_chat:
        rows = []
        for prompt, row_shots in zip(prompts, shots):
            turns = [turn for example, answer in row_shots for turn in ({"role": "user", "content": example},
                                                                        {"role": "assistant", "content": answer})]
            turns.append({"role": "user", "content": prompt})
            turns[0] = {"role": "user", "content": lead + turns[0]["content"]}
            rows.append(tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True))
        return rows
    return [lead + "".join(f"{example}{answer}\n\n" for example, answer in row_shots) + prompt
            for prompt, row_shots in zip(prompts, shots)]


def uses_chat_template(setting, tokenizer) -> bool:
    if setting == "auto":
        return bool(getattr(tokenizer, "chat_template", None))
    if setting and not getattr(tokenizer, "chat_template", None):
        from framework.errors import ConfigError, Problem

        raise ConfigError([Problem("prompt.chat_template", "is true but the base model's tokenizer has no chat "
                                                           "template; set it to auto or false")])
    return bool(setting)


class ShotPool:
    """Few-shot examples retrieved per row: the training split's distinct (prompt, response) pairs, ranked
    by TF-IDF cosine similarity of their rendered prompts to the row's.

    The words are the model's own tokenizer ids, so no text-mining library is needed and a word is what
    the model reads. idf is log((1 + n) / (1 + df)): a token in every prompt (the template's fixed text,
    the task) weighs nothing. Only the texts are fitted state worth saving (`to_dict`); the vectors are
    rebuilt from them, deterministically, when a saved model is loaded."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def fit(self, prompts: list[str], responses: list[str]) -> "ShotPool":
        pairs = list(dict.fromkeys(zip(prompts, responses)))
        self.prompts_ = [p for p, _ in pairs]
        self.responses_ = [r for _, r in pairs]
        self._index = {pair: i for i, pair in enumerate(pairs)}
        ids = self._ids(self.prompts_)
        self.vocabulary_ = np.unique(_flat(ids)[1])
        rows, columns, counts = self._counts(ids)
        df = np.bincount(columns, minlength=len(self.vocabulary_))
        self.idf_ = np.log((1 + len(pairs)) / (1 + df)).astype(np.float32)
        self.rows_, self.columns_, self.values_ = rows, columns, self._normalized(rows, columns, counts, len(pairs))
        return self

    def to_dict(self) -> dict:
        return {"prompts": self.prompts_, "responses": self.responses_}

    @classmethod
    def from_dict(cls, state: dict, tokenizer) -> "ShotPool":
        return cls(tokenizer).fit(state["prompts"], state["responses"])

    def __len__(self) -> int:
        return len(self.prompts_)

    def positions(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        """Each fitted row's place in the pool (so that it can be kept from retrieving itself)."""
        return np.array([self._index[pair] for pair in zip(prompts, responses)], dtype=np.int64)

    def examples(self, rows: np.ndarray) -> list[tuple[str, str]]:
        return [(self.prompts_[i], self.responses_[i]) for i in rows]

    def nearest(self, prompts: list[str], k: int, exclude: np.ndarray | None = None) -> np.ndarray:
        """The pool rows of the k most similar examples to each prompt, the most similar last (nearest the
        row it helps); ties go to the earlier training row. `exclude[i]` is a pool row that prompt i may
        not retrieve (itself, while training)."""
        size = len(self)
        k = min(k, size - (exclude is not None))
        if k <= 0:
            return np.zeros((len(prompts), 0), dtype=np.int64)
        import torch

        rows, columns, counts = self._counts(self._ids(prompts))
        values = self._normalized(rows, columns, counts, len(prompts))
        width = len(self.vocabulary_)
        pool = torch.sparse_coo_tensor(torch.from_numpy(np.stack([self.rows_, self.columns_])),
                                       torch.from_numpy(self.values_), size=(size, width), is_coalesced=True,
                                       check_invariants=False)  # built sorted and distinct by _counts
        # queries a chunk at a time, dense, so that their vectors and scores stay within ~16 MB each
        # however large the pool and the vocabulary; the pool stays sparse (a sparse-dense product)
        chunk = max(1, 2 ** 22 // max(width, size, 1))
        result = np.empty((len(prompts), k), dtype=np.int64)
        for start in range(0, len(prompts), chunk):
            stop = min(start + chunk, len(prompts))
            lo, hi = np.searchsorted(rows, [start, stop])
            dense = torch.zeros((width, stop - start))
            dense[columns[lo:hi], rows[lo:hi] - start] = torch.from_numpy(values[lo:hi])
            similarity = (pool @ dense).T.numpy() if width else np.zeros((stop - start, size), np.float32)
            if exclude is not None:
                similarity[np.arange(stop - start), exclude[start:stop]] = -np.inf
            result[start:stop] = _top(similarity, k)[:, ::-1]
        return result

    def _ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []

    def _counts(self, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, vocabulary column, count) of every distinct known token of every text, row by row."""
        rows, flat = _flat(ids)
        width = len(self.vocabulary_)
        columns = np.searchsorted(self.vocabulary_, flat)
        known = columns < width
        known[known] = self.vocabulary_[columns[known]] == flat[known]
        keys, counts = np.unique(rows[known] * max(width, 1) + columns[known], return_counts=True)
        return keys // max(width, 1), keys % max(width, 1), counts

    def _normalized(self, rows, columns, counts, n_rows: int) -> np.ndarray:
        weights = (counts * self.idf_[columns]).astype(np.float32)
        norms = np.sqrt(np.bincount(rows, weights=weights.astype(np.float64) ** 2, minlength=n_rows))
        return np.divide(weights, norms[rows], out=np.zeros_like(weights), where=norms[rows] > 0).astype(np.float32)


def _flat(ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """The row of every token, and the tokens, of ragged id lists."""
    lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter((i for row in ids for i in row), dtype=np.int64, count=int(lengths.sum()))
    return np.repeat(np.arange(len(ids), dtype=np.int64), lengths), flat


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's k highest columns, highest first, ties to the lower column: a partition and a sort of k
    per row rather than a sort of the whole row (the pool may hold many thousands of examples)."""
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]
    chosen = scores >= kth
    tied = chosen.sum(1) > k  # more than k reach the k-th score: the earliest of the ties complete the k
    if tied.any():
        above, ties = scores[tied] > kth[tied], scores[tied] == kth[tied]
        chosen[tied] = above | (ties & (np.cumsum(ties, axis=1) <= k - above.sum(1, keepdims=True)))
    columns = np.nonzero(chosen)[1].reshape(len(scores), k)  # row by row, each with exactly k
    order = np.argsort(-np.take_along_axis(scores, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1)
