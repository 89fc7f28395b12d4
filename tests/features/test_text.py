"""Text and sequence features: tokenizers, the vocabulary, <EOS> on every row, truncation and padding
sides, cells that are not text, pretrained Hugging Face tokenizers, and predictions back to strings."""
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from framework.config import load_config
from framework.config.fields import defaults_of
from framework.data.pipeline import prepare_training
from framework.errors import DataError
from framework.features.text import SequenceFeature, TextFeature

SPECIALS = ["<PAD>", "<UNK>", "<SOS>", "<EOS>"]
PAD, UNK, EOS = 0, 1, 3


def settings(feature=TextFeature, **overrides) -> dict:
    return {**defaults_of(feature.preprocessing_schema), **overrides}


def rows_of(ragged) -> list[list[int]]:
    return [ragged.values[a:b].tolist() for a, b in zip(ragged.offsets[:-1], ragged.offsets[1:])]


def tokens_of(column, feature=TextFeature, **overrides) -> list[list[str]]:
    s = settings(feature, **overrides)
    metadata = feature.fit(column, s, "t")
    return [[metadata["vocab"][i] for i in row] for row in rows_of(feature.transform(column, s, metadata, "t"))]


def test_space_punct_splits_punctuation_off_and_lowercases():
    assert tokens_of(pd.Series(["Hello, World!", "it's  snake_case"])) == [
        ["hello", ",", "world", "!", "<EOS>"], ["it", "'", "s", "snake_case", "<EOS>"]]


def test_space_keeps_punctuation_and_sequence_keeps_case():
    assert tokens_of(pd.Series(["Hello, World!"]), tokenizer="space") == [["hello,", "world!", "<EOS>"]]
    assert tokens_of(pd.Series(["A b  A"]), SequenceFeature) == [["A", "b", "A", "<EOS>"]]


def test_characters_keep_spaces_and_unicode():
    assert tokens_of(pd.Series(["ab c", "é!"]), tokenizer="characters", lowercase=False) == [
        ["a", "b", " ", "c", "<EOS>"], ["é", "!", "<EOS>"]]


def test_vocabulary_specials_first_then_by_frequency_ties_by_token():
    metadata = TextFeature.fit(pd.Series(["b a c", "a b", "a d"]), settings(), "t")
    assert metadata["vocab"] == SPECIALS + ["a", "b", "c", "d"]
    assert metadata["frequencies"] == [0, 0, 0, 0, 3, 2, 1, 1]
    assert TextFeature.fit(pd.Series(["a d", "a b", "b a c"]), settings(), "t")["vocab"] == metadata["vocab"]


def test_most_common_and_min_frequency_send_rare_tokens_to_unk():
    column = pd.Series(["a a a b b c", "d"])
    capped = settings(most_common=2)
    metadata = TextFeature.fit(column, capped, "t")
    assert metadata["vocab"] == SPECIALS + ["a", "b"]
    assert rows_of(TextFeature.transform(pd.Series(["c a zz"]), capped, metadata, "t")) == [[UNK, 4, UNK, EOS]]
    assert TextFeature.fit(column, settings(min_frequency=2), "t")["vocab"] == SPECIALS + ["a", "b"]


def test_empty_and_missing_cells_are_one_eos_and_fill_value_is_tokenized():
    column = pd.Series(["x y", "", None, np.nan])
    assert tokens_of(column) == [["x", "y", "<EOS>"], ["<EOS>"], ["<EOS>"], ["<EOS>"]]
    assert tokens_of(column, fill_value="x")[2:] == [["x", "<EOS>"], ["x", "<EOS>"]]


def test_numbers_in_a_text_column_are_text():
    assert tokens_of(pd.Series(["one", 2, 3.5])) == [["one", "<EOS>"], ["2", "<EOS>"], ["3", ".", "5", "<EOS>"]]


def test_cells_that_are_not_text_are_named_by_index():
    column = pd.Series(["fine", {"a": 1}, "ok", {"b": 2}], index=[10, 11, 12, 13])
    with pytest.raises(DataError) as error:
        TextFeature.fit(column, settings(), "review")
    assert str(error.value) == ("text feature 'review': 2 rows (at index 11, 13; values {'a': 1}, {'b': 2}) "
                                "are not text")


def test_lists_are_pre_tokenized_sequences_but_not_text():
    assert tokens_of(pd.Series([["A", "b"], "c A"]), SequenceFeature) == [["A", "b", "<EOS>"], ["c", "A", "<EOS>"]]
    with pytest.raises(DataError, match=r"text feature 't': 1 row \(at index 0; .*\) are lists; .*type: sequence"):
        TextFeature.fit(pd.Series([["a", "b"], "c"]), settings(), "t")


def test_every_value_missing_is_an_error():
    with pytest.raises(DataError, match="text feature 't': every value in the training split is missing"):
        TextFeature.fit(pd.Series([None, np.nan]), settings(), "t")


@pytest.mark.parametrize("side, kept", [("right", ["a", "b", "c"]), ("left", ["d", "e", "f"])])
def test_truncation_keeps_eos_and_cuts_the_chosen_side(side, kept):
    column = pd.Series(["a b c d e f", "a b"])
    assert tokens_of(column, max_sequence_length=4, truncation_side=side) == [kept + ["<EOS>"], ["a", "b", "<EOS>"]]


@pytest.mark.parametrize("side, expected", [("right", [[4, 5, 6, EOS], [4, EOS, PAD, PAD]]),
                                             ("left", [[4, 5, 6, EOS], [PAD, PAD, 4, EOS]])])
def test_batches_pad_to_their_longest_row_on_the_chosen_side(side, expected):
    s = settings(padding_side=side)
    metadata = TextFeature.fit(pd.Series(["a b c", "a", "a b"]), s, "t")
    ragged = TextFeature.transform(pd.Series(["a b c", "a", "a a a a a a a a"]), s, metadata, "t")
    assert ragged[np.array([0, 1])].padded().tolist() == expected  # the long third row is not in this batch


def _long_texts_config(max_length: int) -> dict:
    return load_config({"input_features": [{"name": "text", "type": "text",
                                            "preprocessing": {"max_sequence_length": max_length}}],
                        "output_features": [{"name": "label", "type": "binary"}],
                        "preprocessing": {"cache": False}})


def test_truncation_is_reported_once_with_the_count_over_every_split(caplog):
    frame = pd.DataFrame({"text": [" ".join(["w"] * (3 + i % 10)) for i in range(200)], "label": [i % 2 for i in range(200)]})
    caplog.set_level(logging.WARNING)
    prepare_training(_long_texts_config(8), frame)
    reports = [r.getMessage() for r in caplog.records if "max_sequence_length" in r.getMessage()]
    too_long = sum(3 + i % 10 + 1 > 8 for i in range(200))
    assert reports == [f"text feature 'text': {too_long} of 200 rows were longer than max_sequence_length 8 and lost "
                       "tokens on the right (the longest had 13 tokens, <EOS> included)"]


def test_max_length_is_the_longest_training_row_after_truncation():
    assert TextFeature.fit(pd.Series(["a b c d e f", "a"]), settings(max_sequence_length=5), "t")["max_length"] == 5
    assert TextFeature.fit(pd.Series(["a b", "a"]), settings(), "t")["max_length"] == 3


def test_predictions_stop_at_eos_and_become_strings():
    metadata = TextFeature.fit(pd.Series(["a b c"]), settings(), "t")
    logits = torch.full((2, 5, len(metadata["vocab"])), -10.0)
    for row, ids in enumerate([[4, 5, EOS, 6, 6], [6, 4, 6, 4, EOS]]):
        logits[row, torch.arange(5), torch.tensor(ids)] = 10.0
    outputs = TextFeature.predict(logits, metadata, {})
    assert outputs["predictions"].tolist() == [[4, 5, EOS, PAD, PAD], [6, 4, 6, 4, EOS]]
    arrays = {k: v.numpy() for k, v in outputs.items()}
    result = TextFeature.postprocess(arrays, metadata, "t")
    assert result["t_predictions"].tolist() == ["a b", "c a c a"]
    assert result["t_probability"] == pytest.approx([1.0, 1.0], abs=1e-6)


def test_character_predictions_join_without_spaces():
    s = settings(tokenizer="characters")
    metadata = TextFeature.fit(pd.Series(["ab c"]), s, "t")
    ids = [metadata["vocab"].index(c) for c in "ca b"] + [EOS]
    arrays = {"predictions": np.array([ids]), "token_probabilities": np.ones((1, 5), dtype=np.float32)}
    assert TextFeature.postprocess(arrays, metadata, "t")["t_predictions"].tolist() == ["ca b"]


@pytest.fixture(scope="module")
def local_tokenizer(tmp_path_factory):
    """A word-level Hugging Face tokenizer trained offline and saved like a hub checkpoint."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(["the cat sat on the mat", "a dog ate the cat food"],
                                trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[BOS]", "[EOS]"]))
    backend.post_processor = processors.TemplateProcessing(single="[BOS] $A [EOS]",
                                                           special_tokens=[("[BOS]", 2), ("[EOS]", 3)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                        bos_token="[BOS]", eos_token="[EOS]")
    path = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(path)
    return path, tokenizer


def test_a_pretrained_tokenizer_gives_its_own_ids(local_tokenizer):
    path, tokenizer = local_tokenizer
    s = settings(tokenizer="pretrained", pretrained_tokenizer=str(path))
    column = pd.Series(["the cat sat", "a zebra ate", ""])
    metadata = TextFeature.fit(column, s, "t")
    assert rows_of(TextFeature.transform(column, s, metadata, "t")) == [tokenizer(t)["input_ids"] for t in column]
    assert (metadata["pad_id"], metadata["sos_id"], metadata["eos_id"]) == (0, 2, 3)
    assert metadata["vocab"][tokenizer.convert_tokens_to_ids("cat")] == "cat"
    assert TextFeature.input_context(metadata)["vocab_size"] == len(tokenizer)


def test_a_pretrained_model_needs_no_tokenizer_files_after_fitting(local_tokenizer, tmp_path):
    import shutil

    path, tokenizer = local_tokenizer
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    s = settings(tokenizer="pretrained", pretrained_tokenizer=str(copy), max_sequence_length=4)
    metadata = TextFeature.fit(pd.Series(["the cat sat on the mat"]), s, "t")
    shutil.rmtree(copy)  # the metadata holds the whole tokenizer definition
    ragged = TextFeature.transform(pd.Series(["the cat sat on the mat"]), s, metadata, "t")
    assert rows_of(ragged) == [tokenizer("the cat sat on the mat")["input_ids"][:3] + [3]]
    arrays = {"predictions": np.array([[*tokenizer("the mat")["input_ids"], 0]]),
              "token_probabilities": np.ones((1, 5), dtype=np.float32)}
    assert TextFeature.postprocess(arrays, metadata, "t")["t_predictions"].tolist() == ["the mat"]


def test_a_missing_pretrained_tokenizer_is_a_clear_error(tmp_path):
    s = settings(tokenizer="pretrained", pretrained_tokenizer=str(tmp_path / "nothing-here"))
    with pytest.raises(DataError, match="cannot load the pretrained tokenizer .*nothing-here.* local directory"):
        TextFeature.fit(pd.Series(["a"]), s, "t")
