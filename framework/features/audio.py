"""Audio: a path to a wav/flac/ogg file (or an array of samples) per row, turned into frames. Input only.

Each recording is read with soundfile and mixed down to mono, resampled to `sample_rate`, cut to
`max_length_in_s` (by default the longest training recording), then framed into raw samples, STFT
magnitudes, log-mel filter banks or MFCCs and optionally standardised per file. The column is a `Ragged`
of float32 frames [total frames, dims] padded with NaN per batch, like a time series with `dims` values
a step; the sequence encoders read it (encoders/audio.py).

Relative paths are read from the dataset file's directory (a DataFrame's `attrs["directory"]` when it
has one, the working directory otherwise; a leading ~ is the home directory), as for images. Files are
read on a thread pool (libsndfile releases the GIL); the signal processing runs in torch on chunks of
rows padded to a common length, never a row at a time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import marshmallow
import numpy as np
import pandas as pd
import torch

from framework.config import fields as f
from framework.data import notices
from framework.data.image_io import file_identity, pool_map, resolve_path
from framework.data.ragged import Ragged
from framework.errors import DataError
from framework.features import audio_dsp as dsp
from framework.features.base import missing_mask
from framework.registry import register_feature_type

# Samples per chunk of rows processed together. A 25 ms / 10 ms STFT of 512 points holds about 13 times
# the bytes of its samples (complex bins for every 160 new samples), so 2M samples stay near 100 MB.
CHUNK_SAMPLES = 1 << 21
EXAMPLES = 3  # unreadable files named in a notice


@dataclass(frozen=True)
class Frames:
    """How a batch of waveforms becomes frames: the frames themselves and how many each row has."""

    size: Callable[[dict], int]
    compute: Callable[[torch.Tensor, dict], torch.Tensor]
    count: Callable[[torch.Tensor, dict], torch.Tensor]


def _spectral_count(lengths: torch.Tensor, m: dict) -> torch.Tensor:
    return dsp.frame_counts(lengths, m["window"], m["shift"])


def _magnitude(waves: torch.Tensor, m: dict) -> torch.Tensor:
    return dsp.stft_magnitude(waves, m["window"], m["shift"], m["num_fft_points"])


def _fbank(waves: torch.Tensor, m: dict) -> torch.Tensor:
    return dsp.log_mel(_magnitude(waves, m), dsp.mel_filter_bank(m["num_filter_bands"], m["num_fft_points"],
                                                                m["sample_rate"]))


FRAMES = {
    "raw": Frames(lambda m: 1, lambda waves, m: waves.unsqueeze(-1), lambda lengths, m: lengths),
    "stft": Frames(lambda m: m["num_fft_points"] // 2 + 1, _magnitude, _spectral_count),
    "fbank": Frames(lambda m: m["num_filter_bands"], _fbank, _spectral_count),
    "mfcc": Frames(lambda m: m["num_mfcc"],
                   lambda waves, m: _fbank(waves, m) @ dsp.dct_matrix(m["num_filter_bands"], m["num_mfcc"]),
                   _spectral_count),
}


def _samples(seconds: float, sample_rate: int) -> int:
    return max(1, int(round(seconds * sample_rate)))


def _fft_points(window: int, num_fft_points: int | None) -> int:
    return num_fft_points if num_fft_points is not None else 1 << (window - 1).bit_length()


class AudioPreprocessing(f.Schema):
    missing_value_strategy = f.Choice(["fill_with_const", "drop_row"], "fill_with_const",
                                      doc="what replaces a missing recording: fill_with_const: one window of "
                                          "silence; drop_row: training drops the row (prediction fills it). An "
                                          "unreadable file is filled with silence either way, and reported")
    type = f.Choice(FRAMES, "fbank", doc="what each frame holds: raw samples (one a frame), stft magnitudes, "
                                         "fbank log-mel filter-bank energies, or mfcc cepstral coefficients")
    sample_rate = f.Int(16000, min=1, doc="rate in Hz every recording is resampled to (arrays are taken to "
                                          "be at this rate)")
    window_length_in_s = f.Float(0.025, min=0.0, min_inclusive=False, doc="length of each frame's window")
    window_shift_in_s = f.Float(0.01, min=0.0, min_inclusive=False, doc="time between the starts of frames")
    num_fft_points = f.Int(None, min=1, doc="FFT size, at least the window's samples (the window is zero-padded "
                                            "to it); null: the next power of two")
    num_filter_bands = f.Int(40, min=1, doc="mel filters of fbank and mfcc")
    num_mfcc = f.Int(13, min=1, doc="cepstral coefficients kept by mfcc (at most num_filter_bands)")
    norm = f.Choice(["per_file", None], "per_file",
                    doc="per_file: standardise each recording by the mean and deviation of all its frames' "
                        "values (removes loudness, keeps the spectrum's shape)")
    max_length_in_s = f.Float(None, min=0.0, min_inclusive=False,
                              doc="longer recordings are cut to this; null: the longest training recording")

    @marshmallow.validates_schema
    def _sizes_fit(self, data: dict, **kwargs) -> None:
        rate, seconds, points = data.get("sample_rate"), data.get("window_length_in_s"), data.get("num_fft_points")
        if rate and seconds and points is not None and points < _samples(seconds, rate):
            raise marshmallow.ValidationError(
                f"must be at least the window's {_samples(seconds, rate)} samples (window_length_in_s {seconds} at "
                f"sample_rate {rate}); got {points}", "num_fft_points")
        bands, coefficients = data.get("num_filter_bands"), data.get("num_mfcc")
        if data.get("type") == "mfcc" and bands and coefficients and coefficients > bands:
            raise marshmallow.ValidationError(f"must be at most num_filter_bands ({bands}); got {coefficients}",
                                              "num_mfcc")


@dataclass
class Recordings:
    """A column read: mono float32 waveforms (None where missing or unreadable) at their own rates,
    each recording's whole length in samples at that rate (more than was read, where it was cut),
    and why each unreadable row could not be read."""

    waves: list[np.ndarray | None]
    rates: np.ndarray
    lengths: np.ndarray
    problems: dict[int, str]


@dataclass(frozen=True)
class _Cell:
    samples: np.ndarray | None
    rate: int = 0
    length: int = 0
    problem: str | None = None


def _soundfile():
    try:
        import soundfile
    except ImportError:
        raise DataError("audio features read files with soundfile: pip install 'framework[audio]'") from None
    return soundfile


def _mono(samples: np.ndarray) -> np.ndarray:
    """[samples] or [samples, channels] -> [samples]: channels are averaged."""
    return samples if samples.ndim == 1 else samples.mean(axis=1, dtype=np.float32)


def _read_file(path: str, keep: Callable[[int], int]) -> _Cell:
    """The first keep(rate) samples of the file (its header tells the rate): a long recording cut to
    max_length_in_s is never read whole."""
    soundfile = _soundfile()
    try:
        with soundfile.SoundFile(path) as handle:
            rate, length = int(handle.samplerate), int(handle.frames)
            samples = handle.read(frames=min(length, keep(rate)), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, TypeError, ValueError) as error:  # LibsndfileError is a RuntimeError
        # no stat before opening: only a file that failed is asked why. libsndfile opens the file itself
        # and says "System error" for an absent one, so the reason is looked up here.
        if isinstance(error, (FileNotFoundError, NotADirectoryError)) or not os.path.exists(path):
            return _Cell(None, problem=f"'{path}' does not exist")
        if isinstance(error, IsADirectoryError) or os.path.isdir(path):
            return _Cell(None, problem=f"'{path}' is a directory")
        reason = getattr(error, "error_string", None) or str(error)  # libsndfile's own words, without the path
        return _Cell(None, problem=f"'{path}' is not a readable audio file ({reason.strip()})")
    return _Cell(_mono(samples), rate, length)


def _read_array(value: Any, sample_rate: int, keep: Callable[[int], int]) -> _Cell:
    try:
        samples = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        return _Cell(None, problem="an array that is not numbers")
    if samples.ndim not in (1, 2):
        return _Cell(None, problem=f"an array of shape {samples.shape}, not [samples] or [samples, channels]")
    return _Cell(_mono(samples[:keep(sample_rate)]), sample_rate, len(samples))


def _read_cell(value: Any, sample_rate: int, keep: Callable[[int], int], directory: str | None = None) -> _Cell:
    """A path is read, an array taken as samples at sample_rate; anything else, and a recording with no
    samples or samples that are not finite, is a problem."""
    if isinstance(value, (str, os.PathLike)):
        cell, shown = _read_file(resolve_path(value, directory), keep), f"'{value}'"
    elif isinstance(value, (np.ndarray, list, tuple)):
        cell, shown = _read_array(value, sample_rate, keep), "an array"
    else:
        return _Cell(None, problem=f"a {type(value).__name__}, not a file path or an array of samples")
    if cell.problem is None and cell.length == 0:
        return _Cell(None, problem=f"{shown} has no samples")
    if cell.problem is None and not np.isfinite(cell.samples).all():
        return _Cell(None, problem=f"{shown} has samples that are not finite")
    return cell


def read_recordings(column: pd.Series, sample_rate: int, keep: Callable[[int], int]) -> Recordings:
    """Every cell read on a thread pool; of each recording at rate r, the first keep(r) samples."""
    present = np.flatnonzero(~missing_mask(column))
    directory = column.attrs.get("directory")
    cells = pool_map(lambda value: _read_cell(value, sample_rate, keep, directory),
                     column.to_numpy(dtype=object)[present])
    waves: list[np.ndarray | None] = [None] * len(column)
    rates, lengths = np.zeros(len(column), dtype=np.int64), np.zeros(len(column), dtype=np.int64)
    problems = {}
    for row, cell in zip(present.tolist(), cells):
        waves[row], rates[row], lengths[row] = cell.samples, cell.rate, cell.length
        if cell.problem is not None:
            problems[row] = cell.problem
    return Recordings(waves, rates, lengths, problems)


def _source_samples(max_samples: int, sample_rate: int) -> Callable[[int], int]:
    """How much of a recording at rate r gives max_samples at sample_rate: their span, plus what the
    resampling filter reads past the end (about 6 zero crossings of the lower rate; 8 kept)."""
    return lambda rate: -(-max_samples * rate // sample_rate) + 8 * -(-rate // sample_rate) + 8


def _report(recordings: Recordings, column: pd.Series, metadata: dict, name: str) -> None:
    """Unreadable files, resampled rates and cut recordings, each counted over every split and said once."""
    if recordings.problems:
        shown = "; ".join(f"index {column.index[row]}: {problem}"
                          for row, problem in list(recordings.problems.items())[:EXAMPLES])
        notices.count(f"audio:{name}:unreadable",
                      lambda totals: f"audio feature '{name}': {totals['rows']} rows could not be read and were "
                                     f"filled with silence (e.g. {shown})",
                      rows=len(recordings.problems))
    rate, read = metadata["sample_rate"], recordings.rates > 0
    others = recordings.rates[read & (recordings.rates != rate)]
    if len(others):
        found, counts = np.unique(others, return_counts=True)
        notices.count(f"audio:{name}:rates",
                      lambda totals: f"audio feature '{name}': resampled to {rate} Hz: " + ", ".join(
                          f"{totals[key]} file{'s' * (totals[key] > 1)} at {key.removeprefix('hz_')} Hz"
                          for key in sorted(totals, key=lambda key: int(key.removeprefix('hz_')))),
                      **{f"hz_{source}": int(count) for source, count in zip(found, counts)})
    lengths = dsp.resampled_length(recordings.lengths[read], recordings.rates[read], rate)  # int64 arrays
    long = int(np.sum(lengths > metadata["max_samples"]))
    if long:
        seconds = metadata["max_samples"] / rate
        notices.count(f"audio:{name}:cut", lambda totals: f"audio feature '{name}': {totals['rows']} recordings "
                                                          f"cut to {seconds:g} s", rows=long)


def _chunks(lengths: np.ndarray, budget: int = CHUNK_SAMPLES) -> list[np.ndarray]:
    """Rows in order of length, cut into runs whose padded size stays within `budget` samples: similar
    lengths share a chunk, so little padding is computed."""
    order = np.argsort(lengths, kind="stable")
    chunks, start = [], 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop + 1 - start) * lengths[order[stop]] <= budget:
            stop += 1
        chunks.append(order[start:stop])
        start = stop
    return chunks


def _padded(waves: list[np.ndarray], rows: np.ndarray) -> torch.Tensor:
    width = max(len(waves[row]) for row in rows)
    batch = np.zeros((len(rows), width), dtype=np.float32)
    for i, row in enumerate(rows):  # one copy per row into the chunk: the rows arrive as separate arrays
        batch[i, :len(waves[row])] = waves[row]
    return torch.from_numpy(batch)


def _resampled(waves: list[np.ndarray | None], rates: np.ndarray, sample_rate: int) -> list[np.ndarray | None]:
    """Every waveform at `sample_rate`, rows of one source rate resampled together a chunk at a time."""
    out = list(waves)
    for rate in np.unique(rates):
        rows = np.flatnonzero(rates == rate)
        if rate == sample_rate or rate == 0:
            continue
        lengths = np.array([len(waves[row]) for row in rows])
        for chunk in _chunks(lengths):
            batch = dsp.resample(_padded(waves, rows[chunk]), int(rate), sample_rate).numpy()
            for i, row in enumerate(rows[chunk]):
                out[row] = batch[i, :dsp.resampled_length(len(waves[row]), int(rate), sample_rate)]
    return out


def _framed(waves: list[np.ndarray], metadata: dict) -> Ragged:
    """Frames of every row, in row order, standardised per file where asked."""
    kind = FRAMES[metadata["type"]]
    lengths = np.array([len(wave) for wave in waves], dtype=np.int64)
    counts = kind.count(torch.from_numpy(lengths), metadata).numpy()
    values = np.empty((int(counts.sum()), kind.size(metadata)), dtype=np.float32)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for chunk in _chunks(lengths):
        frames = kind.compute(_padded(waves, chunk), metadata)
        real = torch.arange(frames.shape[1])[None] < torch.from_numpy(counts[chunk])[:, None]
        if metadata["norm"] == "per_file":
            frames = dsp.per_file_zscore(frames, real)
        chunk_values = frames[real].numpy()  # the chunk's rows one after another, each its real frames
        within = np.repeat(np.cumsum(counts[chunk]) - counts[chunk], counts[chunk])
        destination = np.repeat(starts[chunk], counts[chunk]) + np.arange(len(chunk_values)) - within
        values[destination] = chunk_values
    return Ragged.from_lengths(values, counts, pad_value=np.nan)


def _silence(metadata: dict) -> np.ndarray:
    return np.zeros(metadata["window"], dtype=np.float32)


@register_feature_type("audio")
class AudioFeature:
    preprocessing_schema = AudioPreprocessing
    default_encoder = "stacked_cnn"
    default_decoder = None
    default_loss = None
    default_metrics = ()

    @staticmethod
    def fit(column: pd.Series, settings: dict, name: str) -> dict:
        """The frame sizes in samples and, unless max_length_in_s is set, the longest training
        recording at sample_rate (from the files' headers: transform reads the samples)."""
        rate = settings["sample_rate"]
        recordings = read_recordings(column, rate, keep=lambda source: 0)
        read = np.array([wave is not None for wave in recordings.waves], dtype=bool)
        lengths = dsp.resampled_length(recordings.lengths[read], recordings.rates[read], rate)  # int64 arrays
        if not len(lengths):
            problems = recordings.problems
            example = f"; e.g. {next(iter(problems.values()))}" if problems else ""
            raise DataError(f"audio feature '{name}': no recording of the training split could be read "
                            f"({len(problems)} unreadable, {len(column) - len(problems)} missing{example})")
        window = _samples(settings["window_length_in_s"], rate)
        limit = settings["max_length_in_s"]
        return {"type": settings["type"], "sample_rate": rate, "window": window,
                "shift": _samples(settings["window_shift_in_s"], rate),
                "num_fft_points": _fft_points(window, settings["num_fft_points"]),
                "num_filter_bands": settings["num_filter_bands"], "num_mfcc": settings["num_mfcc"],
                "norm": settings["norm"],
                "max_samples": _samples(limit, rate) if limit is not None else int(max(lengths))}

    @staticmethod
    def transform(column: pd.Series, settings: dict, metadata: dict, name: str) -> Ragged:
        rate, limit = metadata["sample_rate"], metadata["max_samples"]
        recordings = read_recordings(column, rate, _source_samples(limit, rate))
        _report(recordings, column, metadata, name)
        waves = _resampled(recordings.waves, recordings.rates, rate)
        silence = _silence(metadata)
        return _framed([silence if wave is None else wave[:limit] for wave in waves], metadata)

    @staticmethod
    def row_fingerprints(column: pd.Series) -> pd.Series:
        """What each row reads, for the preprocessing cache's key: a path's absolute location, size and
        modification time (a recording rewritten under the same name misses the cache); arrays of
        samples stay as they are and are hashed by their bytes."""
        directory = column.attrs.get("directory")
        return pd.Series([file_identity(cell, directory) if isinstance(cell, (str, os.PathLike)) else cell
                          for cell in column.to_numpy(dtype=object)], index=column.index, dtype=object)

    @staticmethod
    def input_context(metadata: dict) -> dict:
        return {"input_size": FRAMES[metadata["type"]].size(metadata)}


__all__ = ["AudioFeature", "AudioPreprocessing", "read_recordings"]
