"""Audio preprocessing: files and arrays to frames, lengths, resampling, bad files, config checks."""
import logging

import numpy as np
import pandas as pd
import pytest
import soundfile
import torch
from audio_tones import tone, write

from framework.config.fields import defaults_of
from framework.config.problems import ConfigError
from framework.config.resolve import resolve_config
from framework.data import notices
from framework.errors import DataError
from framework.features import audio_dsp as dsp
from framework.features.audio import AudioFeature, AudioPreprocessing


def settings(**overrides) -> dict:
    return {**defaults_of(AudioPreprocessing), **overrides}


def run(column: pd.Series, **overrides):
    s = settings(**overrides)
    metadata = AudioFeature.fit(column, s, "clip")
    return AudioFeature.transform(column, s, metadata, "clip"), metadata


@pytest.mark.parametrize("kind, size", [("raw", 1), ("stft", 257), ("fbank", 40), ("mfcc", 13)])
def test_each_kind_gives_float32_frames_of_its_width_and_one_length_per_row(tmp_path, kind, size):
    column = pd.Series([write(tmp_path / "a.wav", tone(300.0, 0.25)), write(tmp_path / "b.wav", tone(800.0, 0.1))])
    frames, metadata = run(column, type=kind)
    assert AudioFeature.input_context(metadata) == {"input_size": size}
    expected = [4000, 1600] if kind == "raw" else [1 + (4000 - 400) // 160, 1 + (1600 - 400) // 160]
    assert frames.lengths.tolist() == expected
    padded = frames.padded()
    assert padded.dtype == np.float32 and padded.shape == (2, expected[0], size)
    assert np.isnan(padded[1, expected[1]:]).all() and np.isfinite(padded[1, :expected[1]]).all()


def test_frames_match_the_hand_computed_fbank_of_each_file_and_arrays_read_like_files(tmp_path):
    waves = [tone(300.0, 0.25), tone(2000.0, 0.12, noise=0.05)]  # noise: every band well above float32 rounding
    paths = pd.Series([write(tmp_path / f"{i}.wav", wave) for i, wave in enumerate(waves)])
    from_files, _ = run(paths, norm=None)
    from_arrays, _ = run(pd.Series(waves), norm=None)
    np.testing.assert_array_equal(from_files.values, from_arrays.values)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    frame = waves[1][160 * 2:160 * 2 + 400] * hann  # row 1, frame 2, by hand
    power = np.abs(np.fft.rfft(frame, n=512)) ** 2
    expected = np.log(np.maximum(power @ dsp.mel_filter_bank(40, 512, 16000).numpy().astype(np.float64), 1e-10))
    row1 = from_files.values[from_files.offsets[1]:from_files.offsets[2]]
    np.testing.assert_allclose(row1[2], expected, rtol=1e-4, atol=1e-4)


def test_per_file_norm_removes_loudness_and_keeps_the_spectrum():
    quiet = tone(800.0, 0.2, noise=0.05)
    loud, _ = run(pd.Series([quiet * 8]), type="fbank")
    frames, _ = run(pd.Series([quiet]), type="fbank")
    np.testing.assert_allclose(loud.values, frames.values, atol=1e-4)  # x8 is +log(64) in every band: removed
    assert abs(frames.values.mean()) < 1e-5 and abs(frames.values.std() - 1) < 1e-4
    band = np.argmax(frames.values.mean(axis=0))
    assert frames.values[:, band].min() > 1  # the tone's band stands out in every frame


def test_length_is_the_longest_training_recording_or_max_length_in_s(tmp_path, caplog):
    train = pd.Series([tone(300.0, 0.2), tone(300.0, 0.1)])
    s = settings(type="raw")
    metadata = AudioFeature.fit(train, s, "clip")
    assert metadata["max_samples"] == 3200
    with caplog.at_level(logging.WARNING, logger="framework.data"):
        longer = AudioFeature.transform(pd.Series([tone(300.0, 0.5)]), s, metadata, "clip")
    assert longer.lengths.tolist() == [3200]
    assert "audio feature 'clip': 1 recordings cut to 0.2 s" in caplog.text
    cut, _ = run(train, type="fbank", max_length_in_s=0.05)  # 800 samples: 1 + (800 - 400) // 160 frames
    assert cut.lengths.tolist() == [3, 3]


def test_a_long_recording_is_read_only_as_far_as_kept_with_the_same_result_as_whole(tmp_path):
    wave = tone(1000.0, 1.0, 44100, noise=0.1)
    path = write(tmp_path / "long.wav", wave, 44100)
    frames, _ = run(pd.Series([path]), type="raw", norm=None, max_length_in_s=0.1)
    whole = dsp.resample(torch.from_numpy(wave)[None], 44100, 16000)[0, :1600].numpy()
    np.testing.assert_allclose(frames.values[:, 0], whole, atol=1e-6)


def test_relative_paths_are_read_from_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path / "a.wav", tone(300.0, 0.1))
    monkeypatch.chdir(tmp_path)
    frames, _ = run(pd.Series(["a.wav"]), type="raw", norm=None)
    np.testing.assert_allclose(frames.values[:, 0], tone(300.0, 0.1))


def test_relative_paths_of_a_dataset_file_are_read_from_its_directory(tmp_path, monkeypatch):
    (tmp_path / "data" / "wavs").mkdir(parents=True)
    write(tmp_path / "data" / "wavs" / "a.wav", tone(300.0, 0.1))
    column = pd.Series(["wavs/a.wav"])
    column.attrs["directory"] = str(tmp_path / "data")  # what the pipeline records for a dataset file
    monkeypatch.chdir(tmp_path)  # elsewhere: the working directory does not hold wavs/
    frames, _ = run(column, type="raw", norm=None)
    np.testing.assert_allclose(frames.values[:, 0], tone(300.0, 0.1))


def test_stereo_files_are_mixed_down_to_mono(tmp_path):
    left, right = tone(300.0, 0.1), tone(800.0, 0.1)
    soundfile.write(str(tmp_path / "stereo.wav"), np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    frames, _ = run(pd.Series([str(tmp_path / "stereo.wav")]), type="raw", norm=None)
    np.testing.assert_allclose(frames.values[:, 0], (left + right) / 2, atol=1e-6)


def test_files_at_other_rates_are_resampled_and_reported_once_over_every_split(tmp_path, caplog):
    def files(prefix):
        return pd.Series([write(tmp_path / f"{prefix}{i}.wav", tone(1000.0, 0.25, rate), rate)
                          for i, rate in enumerate([16000, 8000, 8000, 22050])])

    s = settings(type="stft", norm=None)
    with caplog.at_level(logging.WARNING, logger="framework.data"), notices.collected():
        metadata = AudioFeature.fit(files("train"), s, "clip")
        frames = [AudioFeature.transform(files(split), s, metadata, "clip") for split in ("train", "test")]
    messages = [r.getMessage() for r in caplog.records if "resampled" in r.getMessage()]
    assert messages == ["audio feature 'clip': resampled to 16000 Hz: 4 files at 8000 Hz, 2 files at 22050 Hz"]
    for rows in frames:  # every file's tone is at 1000 Hz after resampling: bin 32 of 512 at 16 kHz
        assert rows.lengths.tolist() == [23] * 4
        assert (rows.values.argmax(axis=1) == 32).all()


def test_unreadable_files_are_counted_named_and_filled_with_silence(tmp_path, caplog):
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / "cut.wav").write_bytes(open(write(tmp_path / "whole.wav", tone(300.0, 0.2)), "rb").read()[:30])
    column = pd.Series([str(tmp_path / "whole.wav"), str(tmp_path / "gone.wav"), str(tmp_path / "notes.txt"),
                        str(tmp_path / "cut.wav"), str(tmp_path), None], index=[10, 11, 12, 13, 14, 15])
    with caplog.at_level(logging.WARNING, logger="framework.data"):
        frames, _ = run(column)
    message = caplog.records[-1].getMessage()
    assert message.startswith("audio feature 'clip': 4 rows could not be read and were filled with silence (e.g. "
                              f"index 11: '{tmp_path / 'gone.wav'}' does not exist; index 12: '{tmp_path / 'notes.txt'}' "
                              "is not a readable audio file (")
    assert "index 13" in message and "index 14" not in message  # the first 3 named
    assert len(caplog.records) == 1  # the missing cell (15) is filled without a word, like every missing value
    assert frames.lengths.tolist() == [1 + (3200 - 400) // 160, 1, 1, 1, 1, 1]
    silence = frames.values[frames.offsets[1]]
    np.testing.assert_allclose(silence, np.zeros(40), atol=1e-5)  # the log floor everywhere, centred per file


def test_a_training_split_with_no_readable_recording_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"audio feature 'clip': no recording of the training split could be read "
                                        r"\(2 unreadable, 1 missing; e.g. '.*a.wav' does not exist\)"):
        AudioFeature.fit(pd.Series([str(tmp_path / "a.wav"), "b.flac", None]), settings(), "clip")


def config(**preprocessing) -> dict:
    return {"input_features": [{"name": "clip", "type": "audio", "preprocessing": preprocessing}],
            "output_features": [{"name": "pitch", "type": "category"}]}


def test_config_errors_name_their_key_paths_before_any_data_is_read():
    with pytest.raises(ConfigError) as error:
        resolve_config(config(num_fft_points=256, type="mfcc", num_mfcc=50, window_length_in_s=0.0))
    text = str(error.value)
    assert "input_features[0].preprocessing.window_length_in_s" in text
    with pytest.raises(ConfigError, match=r"input_features\[0\]\.preprocessing\.num_fft_points: must be at least "
                                          r"the window's 400 samples"):
        resolve_config(config(num_fft_points=256))
    with pytest.raises(ConfigError, match=r"preprocessing\.num_mfcc: must be at most num_filter_bands \(40\)"):
        resolve_config(config(type="mfcc", num_mfcc=50))
    with pytest.raises(ConfigError, match="did you mean 'mfcc'"):
        resolve_config(config(type="mfc"))
    resolved = resolve_config(config())
    assert resolved["input_features"][0]["encoder"]["type"] == "stacked_cnn"
    assert resolved["input_features"][0]["preprocessing"]["type"] == "fbank"


def test_through_the_pipeline_unreadable_files_of_every_split_are_reported_once_and_the_frames_cached(
        tones, tmp_path, caplog):
    from framework.data.pipeline import prepare_training

    frame = tones(30, 0)
    frame.loc[[2, 17, 25], "clip"] = [str(tmp_path / f"gone{i}.wav") for i in range(3)]
    resolved = resolve_config(config())
    with caplog.at_level(logging.WARNING, logger="framework.data"):
        first = prepare_training(resolved, frame, cache_dir=tmp_path / "cache")
    unreadable = [r.getMessage() for r in caplog.records if "could not be read" in r.getMessage()]
    assert len(unreadable) == 1 and unreadable[0].startswith("audio feature 'clip': 3 rows could not be read")
    again = prepare_training(resolved, frame, cache_dir=tmp_path / "cache")
    assert again.cache_hit and not first.cache_hit
    for split in ("train", "validation", "test"):
        cached, fresh = again.splits[split].columns["clip"], first.splits[split].columns["clip"]
        np.testing.assert_array_equal(cached.padded(), fresh.padded())
        assert cached.values.shape[1:] == (40,)
