"""Text and token sequences: tokenized once, stored as ragged ids, padded per batch.

`text` is free text (punctuation split off, lowercased by default); `sequence` is a sequence of
symbols (split on whitespace, case kept), given as a string or a list of tokens per cell. Both end
every row with <EOS>: a generator learns when to stop, and an empty text still has one real token.
"""
from __future__ import annotations

from typing import Any

import marshmallow
import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from framework.config import fields as f
from framework.data import notices
from framework.errors import DataError
from framework.features import tokenize
from framework.features.base import describe_rows, missing_mask
from framework.registry import register_feature_type


def _preprocessing_schema(name: str, default_tokenizer: str, default_lowercase: bool) -> type[f.Schema]:
    class Preprocessing(f.Schema):
        tokenizer = f.Choice([*tokenize.BUILT_IN, "pretrained"], default_tokenizer,
                              doc="how a cell is split into tokens: space_punct (words and punctuation), space, "
                                  "characters, or pretrained (a Hugging Face tokenizer, see pretrained_tokenizer)")
        pretrained_tokenizer = f.Str(None, doc="name or local path of a Hugging Face tokenizer, for tokenizer: "
                                               "pretrained (an encoder then sees its own ids)")
        lowercase = f.Bool(default_lowercase, doc="lowercase before tokenizing (built-in tokenizers)")
        most_common = f.Int(20000, min=1, doc="vocabulary cap: rarer tokens map to <UNK>")
        min_frequency = f.Int(1, min=1, doc="tokens seen fewer times in training map to <UNK>")
        max_sequence_length = f.Int(256, min=2, doc="tokens kept per row, <EOS> included; longer rows are "
                                                    "truncated and the count reported")
        truncation_side = f.Choice(["right", "left"], "right", doc="which end of a long row is cut off")
        padding_side = f.Choice(["right", "left"], "right", doc="where a batch pads its shorter rows")
        missing_value_strategy = f.Choice(["fill_with_const", "drop_row"], "fill_with_const",
                                          doc="what replaces a missing value (outputs default to drop_row)")
        fill_value = f.Str("", doc="the text used by fill_with_const")

        @marshmallow.validates_schema
        def _pretrained_needs_a_name(self, data: dict, **kwargs: Any) -> None:
            if data.get("tokenizer") == "pretrained" and not data.get("pretrained_tokenizer"):
                raise marshmallow.ValidationError("tokenizer 'pretrained' needs the tokenizer's name or local path",
                                                  "pretrained_tokenizer")

    Preprocessing.__name__ = Preprocessing.__qualname__ = f"{name}Preprocessing"
    return Preprocessing


def _strings(column: pd.Series, settings: dict, name: str, kind: str, allow_lists: bool) -> pa.Array:
    """The cells as an Arrow string array: missing cells filled, token lists joined, other values refused."""
    missing = missing_mask(column)
    values = column.where(~missing, settings["fill_value"])
    if values.dtype == object:
        lists = values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).to_numpy(dtype=bool)
        if lists.any():
            if not allow_lists:
                raise DataError(f"{kind} feature '{name}': {describe_rows(column, lists)} are lists; a text cell is a "
                                "string (use type: sequence for pre-tokenized cells)")
            values = values.where(~lists, values[lists].map(lambda v: " ".join(str(t) for t in v)))
        odd = values.map(lambda v: not isinstance(v, (str, int, float, np.integer, np.floating, bool))).to_numpy(
            dtype=bool)
        if odd.any():
            raise DataError(f"{kind} feature '{name}': {describe_rows(column, odd)} are not text")
    return pa.array(values.astype(str).to_numpy(dtype=object), type=pa.string())


def _ids(column: pd.Series, settings: dict, metadata: dict, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    strings = _strings(column, settings, name, kind, allow_lists=kind == "sequence")
    if metadata.get("tokenizer_json"):
        return tokenize.pretrained_ids(strings.to_pylist(), metadata["tokenizer_json"])
    tokens = tokenize.split_tokens(strings, settings["tokenizer"], settings["lowercase"])
    return tokenize.ids_of(tokens, metadata["vocab"])


class _TokenFeature:
    """Shared by text and sequence; subclasses set the kind and the preprocessing schema."""

    kind = "text"
    per_token = True  # logits are [batch, tokens, vocabulary]
    default_encoder = "parallel_cnn"
    default_decoder = "generator"
    default_loss = "sequence_softmax_cross_entropy"
    default_metrics = ("loss", "token_accuracy", "sequence_accuracy", "perplexity", "edit_distance", "bleu", "rouge")

    @classmethod
    def fit(cls, column: pd.Series, settings: dict, name: str) -> dict:
        if missing_mask(column).all():
            raise DataError(f"{cls.kind} feature '{name}': every value in the training split is missing")
        if settings["tokenizer"] == "pretrained":
            metadata = tokenize.pretrained_metadata(settings["pretrained_tokenizer"])
        else:
            strings = _strings(column, settings, name, cls.kind, allow_lists=cls.kind == "sequence")
            tokens = tokenize.split_tokens(strings, settings["tokenizer"], settings["lowercase"])
            vocab, frequencies = tokenize.build_vocab(tokens, settings["most_common"], settings["min_frequency"])
            metadata = {"vocab": vocab, "frequencies": frequencies, "pad_id": 0, "unk_id": 1, "sos_id": 2,
                        "eos_id": 3}
        ids, lengths = _ids(column, settings, metadata, name, cls.kind)
        ragged, _ = tokenize.finish_rows(ids, lengths, settings["max_sequence_length"], metadata["eos_id"],
                                         metadata["pad_id"], settings["truncation_side"] == "left", False)
        metadata["max_length"] = int(ragged.lengths.max(initial=1))
        metadata["tokenizer"] = settings["tokenizer"]
        return metadata

    @classmethod
    def transform(cls, column: pd.Series, settings: dict, metadata: dict, name: str) -> Any:
        ids, lengths = _ids(column, settings, metadata, name, cls.kind)
        ragged, truncated = tokenize.finish_rows(
            ids, lengths, settings["max_sequence_length"], metadata["eos_id"], metadata["pad_id"],
            settings["truncation_side"] == "left", settings["padding_side"] == "left")
        if truncated.rows:
            limit, side = settings["max_sequence_length"], settings["truncation_side"]
            notices.count(f"{cls.kind}:{name}:truncated",
                          lambda t: f"{cls.kind} feature '{name}': {t['rows']} of {t['of']} rows were longer than "
                                    f"max_sequence_length {limit} and lost tokens on the {side} (the longest had "
                                    f"{t['max_longest']} tokens, <EOS> included)",
                          rows=truncated.rows, of=len(column), max_longest=truncated.longest)
        return ragged

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {"vocab_size": len(metadata["vocab"]), "pad_id": metadata["pad_id"], "vocab": metadata["vocab"],
                "embeddings_cached": metadata.get("embeddings_cached", False)}

    @staticmethod
    def output_context(metadata: dict) -> dict:
        return {"num_outputs": len(metadata["vocab"]), "vocab": metadata["vocab"], "pad_id": metadata["pad_id"],
                "sos_id": metadata["sos_id"], "eos_id": metadata["eos_id"], "max_length": metadata["max_length"]}

    @staticmethod
    def predict(logits: torch.Tensor, metadata: dict, settings: dict) -> dict[str, torch.Tensor]:
        probabilities = torch.softmax(logits.float(), dim=-1)
        chosen, predictions = probabilities.max(dim=-1)
        after_end = cut_after_eos(predictions, metadata["eos_id"])
        return {"predictions": predictions.masked_fill(after_end, metadata["pad_id"]),
                "token_probabilities": chosen.masked_fill(after_end, 1.0)}

    @staticmethod
    def metric_target(target: torch.Tensor, metadata: dict) -> torch.Tensor:
        return target

    @classmethod
    def postprocess(cls, arrays: dict[str, np.ndarray], metadata: dict, name: str) -> dict:
        rows = token_rows(arrays["predictions"], metadata)
        if metadata.get("tokenizer_json"):
            texts = tokenize.pretrained_decode(rows, metadata["tokenizer_json"])
        else:
            vocab = metadata["vocab"]
            joiner = "" if metadata.get("tokenizer") == "characters" else " "
            texts = [joiner.join(vocab[i] for i in row) for row in rows]
        probability = np.prod(arrays["token_probabilities"].astype(np.float64), axis=1)
        return {f"{name}_predictions": np.asarray(texts, dtype=object), f"{name}_probability": probability}


def cut_after_eos(ids: torch.Tensor, eos_id: int | None) -> torch.Tensor:
    """True at every position after a row's first <EOS> (the <EOS> itself is kept)."""
    if eos_id is None:
        return torch.zeros_like(ids, dtype=torch.bool)
    is_eos = ids == eos_id
    return (torch.cumsum(is_eos.int(), dim=-1) - is_eos.int()) > 0


def token_rows(predictions: np.ndarray, metadata: dict) -> list[list[int]]:
    """Each row's ids up to (not including) <EOS>, without padding."""
    rows = []
    pad, eos = metadata["pad_id"], metadata["eos_id"]
    for row in predictions.tolist():
        end = row.index(eos) if eos is not None and eos in row else len(row)
        rows.append([i for i in row[:end] if i != pad])
    return rows


@register_feature_type("text")
class TextFeature(_TokenFeature):
    kind = "text"
    preprocessing_schema = _preprocessing_schema("Text", "space_punct", default_lowercase=True)


@register_feature_type("sequence")
class SequenceFeature(_TokenFeature):
    kind = "sequence"
    preprocessing_schema = _preprocessing_schema("Sequence", "space", default_lowercase=False)
