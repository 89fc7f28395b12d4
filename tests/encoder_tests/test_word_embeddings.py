"""Pretrained word vectors from a local GloVe- or word2vec-format file: which rows they fill, what the
other rows start as, frozen or trainable, the errors a bad file gives, and that a saved model no longer
needs the file."""
import numpy as np
import pandas as pd
import pytest
import torch

from encoders.word_embeddings import pretrained_embedding_matrix, read_word_vectors
from framework import Model
from framework.errors import FrameworkError

VOCAB = ["<PAD>", "<UNK>", "<SOS>", "<EOS>", "good", "bad", "w0", "w1", "w2", "w3"]
VECTORS = {"good": [1.0, 2.0, 3.0], "bad": [-1.0, -2.0, -3.0], "w0": [0.5, 0.0, -0.5], "unused": [9.0, 9.0, 9.0]}


def glove(path, vectors=VECTORS, header=False):
    lines = [f"{len(vectors)} 3"] if header else []
    lines += [f"{word} {' '.join(map(str, values))}" for word, values in vectors.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("header", [False, True])
def test_rows_of_words_in_the_file_hold_their_vectors(tmp_path, header):
    vectors, found = read_word_vectors(glove(tmp_path / "v.txt", header=header), VOCAB)
    assert found.tolist() == [False] * 4 + [True, True, True] + [False] * 3
    np.testing.assert_array_equal(vectors[4:7], [VECTORS["good"], VECTORS["bad"], VECTORS["w0"]])
    assert not vectors[7:].any()


def test_a_word_holding_spaces_and_the_first_of_repeated_lines(tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("good 3 4\n. . . 1 2\ngood 5 6\n", encoding="utf-8")  # the first line sets the width
    vectors, found = read_word_vectors(path, ["<PAD>", ". . .", "good"])
    np.testing.assert_array_equal(vectors, [[0, 0], [1, 2], [3, 4]])


def test_other_rows_start_random_at_the_scale_of_the_file(tmp_path):
    torch.manual_seed(0)
    big = {f"w{i}": list(np.random.default_rng(i).normal(5.0, 0.1, size=3)) for i in range(4)}
    table = pretrained_embedding_matrix(glove(tmp_path / "v.txt", big), VOCAB + [f"x{i}" for i in range(500)], 3)
    torch.testing.assert_close(table[6], torch.tensor(big["w0"], dtype=torch.float32))
    others = table[10:]
    assert abs(others.mean().item() - 5.0) < 0.05 and others.std().item() < 0.2


@pytest.mark.parametrize("content, message", [
    ("good 1 2 3\n", "holds vectors of width 3, but embedding_size is 4: set embedding_size to 3"),
    ("zebra 1 2 3 4\n", "none of the vocabulary's 10 tokens is in the file"),
    ("good 1 2 x 4\n", "line 1: expected the word 'good' and 4 numbers"),
    ("good\n", "is not a word-vector file"),
    ("\n", "is empty"),
])
def test_a_bad_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "v.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FrameworkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pretrained_embedding_matrix(path, VOCAB, 4)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FrameworkError, match="pretrained_embeddings file '.*nope.txt' does not exist"):
        read_word_vectors(tmp_path / "nope.txt", VOCAB)


def _frame(n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(n):
        keyword = "good" if i % 2 else "bad"
        texts.append(" ".join([*rng.choice(["w0", "w1", "w2", "w3"], size=4), keyword]))
        labels.append(keyword == "good")
    return pd.DataFrame({"text": texts, "label": labels})


@pytest.mark.parametrize("trainable", [False, True])
def test_a_model_starts_from_the_vectors_and_loads_without_the_file(tmp_path, trainable):
    path = glove(tmp_path / "v.txt")
    config = {"input_features": [{"name": "text", "type": "text", "encoder": {
                  "type": "embed", "embedding_size": 3, "pretrained_embeddings": str(path),
                  "embeddings_trainable": trainable}}],
              "output_features": [{"name": "label", "type": "binary"}],
              "trainer": {"epochs": 3, "batch_size": 32, "learning_rate": 0.05, "progress_bar": False}}
    model = Model(config)
    model.train(_frame(), output_dir=tmp_path / "out")
    vocab = model.metadata["text"]["vocab"]
    weights = model.module.input_features["text"].encoder.inputs.embedding.weight
    good = weights[vocab.index("good")].detach()
    assert torch.equal(good, torch.tensor(VECTORS["good"])) is (not trainable)
    model.save(tmp_path / "model")
    path.unlink()
    loaded = Model.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.predict(_frame(20)), model.predict(_frame(20)))
