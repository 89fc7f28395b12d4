"""Text and sequence data end to end through Model: classification from text, a generator that
copies its input, a tagger, predictions as text, and a save/load round trip."""
import numpy as np
import pandas as pd
import pytest

from framework import Model

WORDS = [f"w{i}" for i in range(30)]
KEYWORDS = {"good": "positive", "bad": "negative", "meh": "neutral"}


def keyword_frame(n: int, seed: int) -> pd.DataFrame:
    """Noise words with one keyword somewhere in each text; the keyword decides the class."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=rng.integers(3, 12)))
        keyword = rng.choice(list(KEYWORDS))
        words.insert(int(rng.integers(0, len(words) + 1)), keyword.upper() if rng.random() < 0.3 else keyword)
        texts.append(" ".join(words) + rng.choice(["", ".", "!"]))
        labels.append(KEYWORDS[keyword])
    return pd.DataFrame({"review": texts, "sentiment": labels})


def text_config(encoder: str, **trainer) -> dict:
    return {
        "input_features": [{"name": "review", "type": "text", "encoder": {"type": encoder}}],
        "output_features": [{"name": "sentiment", "type": "category"}],
        "trainer": {"epochs": 8, "batch_size": 32, "learning_rate": 0.005, "progress_bar": False,
                    "early_stop": 0, **trainer},
    }


@pytest.mark.parametrize("encoder", ["parallel_cnn", "embed", "rnn", "stacked_cnn", "transformer"])
def test_a_keyword_decides_the_class(encoder):
    result = Model(text_config(encoder)).train(keyword_frame(600, 0), validation=keyword_frame(100, 2),
                                               test=keyword_frame(300, 1), output_dir=None)
    assert result.test_metrics["sentiment"]["accuracy"] >= 0.9, result.test_metrics


def test_text_model_predicts_saves_and_loads(tmp_path):
    model = Model(text_config("parallel_cnn", epochs=4))
    model.train(keyword_frame(400, 0), output_dir=None)
    frame = keyword_frame(50, 5)
    predictions = model.predict(frame)
    assert list(predictions.index) == list(frame.index)
    assert (predictions["sentiment_predictions"] == frame["sentiment"]).mean() >= 0.8
    model.save(tmp_path / "model")
    restored = Model.load(tmp_path / "model")
    pd.testing.assert_frame_equal(restored.predict(frame), predictions)


def copy_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [" ".join(rng.choice(list("abcdefgh"), size=rng.integers(2, 6))) for _ in range(n)]
    return pd.DataFrame({"source": rows, "target": rows})


def test_the_generator_learns_to_copy_its_input():
    config = {
        "input_features": [{"name": "source", "type": "sequence", "encoder": {"type": "rnn"}}],
        "output_features": [{"name": "target", "type": "sequence", "decoder": {"type": "generator"},
                             "metrics": ["loss", "token_accuracy", "sequence_accuracy", "edit_distance", "bleu"]}],
        "combiner": {"type": "sequence_concat"},
        "trainer": {"epochs": 12, "batch_size": 32, "learning_rate": 0.01, "progress_bar": False, "early_stop": 0},
    }
    model = Model(config)
    result = model.train(copy_frame(600, 0), validation=copy_frame(100, 2), test=copy_frame(200, 1), output_dir=None)
    metrics = result.test_metrics["target"]
    assert metrics["sequence_accuracy"] >= 0.8, metrics
    assert metrics["token_accuracy"] >= 0.9, metrics
    assert metrics["edit_distance"] <= 0.5, metrics
    frame = copy_frame(20, 7)
    predicted = model.predict(frame[["source"]])["target_predictions"]
    assert (predicted == frame["target"]).mean() >= 0.8


def tag_frame(n: int, seed: int) -> pd.DataFrame:
    """Each token tagged by whether it is a vowel: one tag per input token."""
    rng = np.random.default_rng(seed)
    tokens = [list(rng.choice(list("abcdefghij"), size=rng.integers(2, 8))) for _ in range(n)]
    return pd.DataFrame({"chars": [" ".join(t) for t in tokens],
                         "tags": [" ".join("V" if c in "aei" else "C" for c in t) for t in tokens]})


def test_the_tagger_labels_each_token():
    config = {
        "input_features": [{"name": "chars", "type": "sequence", "encoder": {"type": "rnn", "bidirectional": True}}],
        "output_features": [{"name": "tags", "type": "sequence", "decoder": {"type": "tagger"},
                             "metrics": ["loss", "token_accuracy", "sequence_accuracy"]}],
        "combiner": {"type": "sequence_concat"},
        "trainer": {"epochs": 15, "batch_size": 32, "learning_rate": 0.01, "progress_bar": False, "early_stop": 0},
    }
    result = Model(config).train(tag_frame(600, 0), validation=tag_frame(100, 2), test=tag_frame(200, 1),
                                 output_dir=None)
    assert result.test_metrics["tags"]["token_accuracy"] >= 0.95, result.test_metrics
