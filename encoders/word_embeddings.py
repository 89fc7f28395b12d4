"""Pretrained word vectors from a local text file, in GloVe's format: one `word v1 v2 ... vD` a line.

A word2vec text file (its first line `count width`) reads too. Only the lines of words in the
vocabulary are split and parsed, straight into one preallocated array: a multi-gigabyte file costs one
pass of line reads, and memory for the vocabulary's own vectors only.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from framework.errors import FrameworkError


def _width(first_line: str, path: Path) -> tuple[int, bool]:
    """The vectors' width, and whether the first line is a word2vec header rather than a vector."""
    fields = first_line.split()
    if len(fields) == 2 and all(field.isdigit() for field in fields):
        return int(fields[1]), True
    if len(fields) < 2:
        raise FrameworkError(f"pretrained_embeddings '{path}' is not a word-vector file: its first line should be "
                             f"a word followed by its vector's values, got {first_line[:80]!r}")
    return len(fields) - 1, False


def _read_rows(lines: Iterable[tuple[int, str]], index: dict[str, int], out: np.ndarray, path: Path) -> np.ndarray:
    """Fills `out` with the vectors of vocabulary words (the first line of a repeated word wins);
    returns which vocabulary rows were found."""
    found = np.zeros(len(out), dtype=bool)
    width = out.shape[1]
    # the first words of vocabulary entries that hold spaces: lines starting so are parsed in full
    spaced = {word.split(maxsplit=1)[0] for word in index if len(word.split()) > 1}
    for number, line in lines:
        head = line.split(maxsplit=1)
        if not head or (head[0] not in index and head[0] not in spaced):  # most lines: one split, nothing parsed
            continue
        # a word may hold spaces (GloVe 840B has '. . .'), so the word is what stands left of the values
        word, *values = line.rsplit(maxsplit=width)
        position = index.get(word)
        if position is None or found[position]:
            continue
        try:
            out[position] = np.asarray(values, dtype=np.float32)
        except ValueError:
            raise FrameworkError(f"pretrained_embeddings '{path}', line {number}: expected the word {word!r} and "
                                 f"{width} numbers, got {line[:80]!r}") from None
        found[position] = True
    return found


def read_word_vectors(path: str | os.PathLike, vocab: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """[len(vocab), width] float32 vectors (zeros where a word is not in the file) and a bool mask of
    the vocabulary words found."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FrameworkError(f"pretrained_embeddings file '{path}' does not exist")
    index = {word: position for position, word in enumerate(vocab)}
    try:
        with open(path, encoding="utf-8") as file:
            first = file.readline()
            if not first.strip():
                raise FrameworkError(f"pretrained_embeddings file '{path}' is empty")
            width, header = _width(first, path)
            out = np.zeros((len(vocab), width), dtype=np.float32)
            lines = enumerate(file, start=2) if header else _chain_first(first, file)
            return out, _read_rows(lines, index, out, path)
    except UnicodeDecodeError as error:
        raise FrameworkError(f"pretrained_embeddings file '{path}' is not UTF-8 text: {error}") from None


def _chain_first(first: str, rest: Iterable[str]) -> Iterable[tuple[int, str]]:
    yield 1, first
    yield from enumerate(rest, start=2)


def pretrained_embedding_matrix(path: str | os.PathLike, vocab: list[str], embedding_size: int) -> torch.Tensor:
    """The initial embedding table for `vocab`: a word's vector from the file where it has one, else a
    random vector drawn (from torch's generator, so the model seed governs it) with the spread of the
    file's vectors, so those rows start at the same scale as the pretrained ones."""
    vectors, found = read_word_vectors(path, vocab)
    if vectors.shape[1] != embedding_size:
        raise FrameworkError(f"pretrained_embeddings '{path}' holds vectors of width {vectors.shape[1]}, but "
                             f"embedding_size is {embedding_size}: set embedding_size to {vectors.shape[1]}")
    if not found.any():
        raise FrameworkError(f"pretrained_embeddings '{path}': none of the vocabulary's {len(vocab)} tokens is in "
                             f"the file (e.g. {', '.join(repr(w) for w in vocab[:5])}); check the file and the "
                             "tokenizer's casing")
    known = torch.from_numpy(vectors[found])
    table = torch.randn(len(vocab), embedding_size) * known.std(correction=0) + known.mean()
    table[torch.from_numpy(found)] = known
    return table
