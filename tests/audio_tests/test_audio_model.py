"""Audio inputs in trained models: tones told apart by pitch (pinned floors on held-out accuracy), and a
model with audio and number inputs that predicts the same after save and load."""
import pandas as pd
import pytest

from framework import Model


def pitch_config(preprocessing: dict, encoder: dict, epochs: int) -> dict:
    return {"input_features": [{"name": "clip", "type": "audio", "preprocessing": preprocessing, "encoder": encoder}],
            "output_features": [{"name": "pitch", "type": "category"}],
            "combiner": {"type": "concat", "output_size": 32},
            "trainer": {"epochs": epochs, "batch_size": 16, "learning_rate": 0.005, "progress_bar": False,
                        "early_stop": 0}}


@pytest.mark.parametrize("preprocessing, encoder", [
    ({"type": "fbank"}, {"type": "stacked_cnn", "num_filters": 16, "embedding_size": 16}),
    ({"type": "mfcc", "num_mfcc": 13}, {"type": "rnn", "state_size": 16, "embedding_size": 16}),
], ids=["fbank-stacked_cnn", "mfcc-rnn"])
def test_tones_are_classified_by_pitch(tones, preprocessing, encoder):
    model = Model(pitch_config(preprocessing, encoder, epochs=8))
    result = model.train(tones(120, 0), validation=tones(30, 1), test=tones(60, 2), output_dir=None)
    assert result.test_metrics["pitch"]["accuracy"] >= 0.9


def test_a_model_with_audio_and_number_inputs_predicts_the_same_after_save_and_load(tones, tmp_path):
    config = pitch_config({"type": "fbank"}, {"type": "stacked_cnn", "num_filters": 8, "embedding_size": 8}, epochs=2)
    config["input_features"].append({"name": "gain", "type": "number"})
    model = Model(config)
    model.train(tones(40, 3), validation=tones(10, 4), output_dir=None)
    fresh = tones(12, 5)
    fresh.loc[3, "clip"] = str(tmp_path / "gone.wav")  # an unreadable file is read as silence at predict time too
    before = model.predict(fresh)
    model.save(tmp_path / "model")
    after = Model.load(tmp_path / "model").predict(fresh)
    pd.testing.assert_frame_equal(before, after)
    assert len(before) == 12 and set(before["pitch_predictions"]) <= {"low", "mid", "high"}
