"""Signal processing for audio features, on batches of equal-length waveforms [N, T] as float32 tensors.

Every function works on a whole batch at once (a chunk of a column), never a row at a time; callers pad
rows to a common length and keep each row's real length to cut the results. Written with torch alone so
the audio extra needs nothing beyond soundfile (no torchaudio, no scipy, no librosa).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# The lowest power (or magnitude) a log is taken of: silence reads as log(1e-10), not -inf.
LOG_FLOOR = 1e-10


def _sinc_kernels(orig: int, new: int, zero_crossings: int, rolloff: float) -> tuple[torch.Tensor, int]:
    """The `new` polyphase filters of a Hann-windowed sinc lowpass, one per output phase, as conv1d
    weights [new, 1, K], and how many input samples each reaches back (the left padding).

    The cutoff sits at `rolloff` times the lower Nyquist rate, so downsampling removes what would
    alias; `zero_crossings` per side sets the steepness (the same design as torchaudio's default).
    """
    cutoff = min(orig, new) * rolloff  # in cycles per (reduced) sample period, relative to the rates
    reach = math.ceil(zero_crossings * orig / cutoff)
    taps = torch.arange(-reach, reach + orig, dtype=torch.float64) / orig
    t = (-torch.arange(new, dtype=torch.float64)[:, None] / new + taps[None]) * cutoff
    t = t.clamp(-zero_crossings, zero_crossings)
    window = torch.cos(t * math.pi / zero_crossings / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    return (sinc * window * (cutoff / orig)).to(torch.float32).unsqueeze(1), reach


def resampled_length(length: int, orig: int, new: int) -> int:
    return -(-length * new // orig)  # ceil without floats: exact for any length


def resample(waves: torch.Tensor, orig: int, new: int, zero_crossings: int = 6,
             rolloff: float = 0.99) -> torch.Tensor:
    """[N, T] sampled at `orig` Hz -> [N, ceil(T * new / orig)] at `new` Hz, band-limited.

    Polyphase: the rates are reduced by their gcd to orig' and new'; each stride of orig' input samples
    gives new' outputs, one per filter phase, in a single strided convolution.
    """
    if orig == new:
        return waves
    step = math.gcd(orig, new)
    orig, new = orig // step, new // step
    kernels, reach = _sinc_kernels(orig, new, zero_crossings, rolloff)
    rows, length = waves.shape
    padded = F.pad(waves.unsqueeze(1), (reach, reach + orig))
    phases = F.conv1d(padded, kernels.to(waves.dtype), stride=orig)  # [N, new, strides]
    return phases.transpose(1, 2).reshape(rows, -1)[:, :resampled_length(length, orig, new)]


def frame_counts(lengths: torch.Tensor, window: int, shift: int) -> torch.Tensor:
    """Frames of `window` samples every `shift` samples that fit in each length (at least one: a
    row shorter than a window is read as one zero-padded window)."""
    return torch.clamp((lengths - window) // shift, min=0) + 1


def frames(waves: torch.Tensor, window: int, shift: int) -> torch.Tensor:
    """[N, T] -> [N, frames, window], zero-padding T to at least one window."""
    if waves.shape[1] < window:
        waves = F.pad(waves, (0, window - waves.shape[1]))
    return waves.unfold(1, window, shift)


def stft_magnitude(waves: torch.Tensor, window: int, shift: int, num_fft_points: int) -> torch.Tensor:
    """|STFT| of Hann-windowed frames: [N, frames, num_fft_points // 2 + 1]. Each frame of `window`
    samples is zero-padded to `num_fft_points` (so the bins are sample_rate / num_fft_points Hz apart)."""
    hann = torch.hann_window(window, periodic=True, dtype=waves.dtype, device=waves.device)
    return torch.fft.rfft(frames(waves, window, shift) * hann, n=num_fft_points).abs()


def _hz_to_mel(hz):
    return 2595.0 * torch.log10(1.0 + hz / 700.0)  # the HTK mel scale


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filter_bank(num_bands: int, num_fft_points: int, sample_rate: int) -> torch.Tensor:
    """Triangular filters [num_fft_points // 2 + 1, num_bands], centres equally spaced on the mel scale
    from 0 Hz to the Nyquist rate; each rises from its left neighbour's centre to 1 at its own and falls
    to 0 at its right neighbour's (the HTK / Kaldi shape, peak 1, not area-normalised)."""
    edges = _mel_to_hz(torch.linspace(0.0, float(_hz_to_mel(torch.tensor(sample_rate / 2.0))), num_bands + 2,
                                      dtype=torch.float64))
    bins = torch.arange(num_fft_points // 2 + 1, dtype=torch.float64) * sample_rate / num_fft_points
    left, centre, right = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - left) / (centre - left)
    falling = (right - bins[:, None]) / (right - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).to(torch.float32)


def log_mel(magnitude: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
    """Log filter-bank energies: the power spectrum summed through each mel filter, then log."""
    return torch.log(torch.clamp((magnitude ** 2) @ bank.to(magnitude.dtype), min=LOG_FLOOR))


def dct_matrix(num_bands: int, num_coefficients: int) -> torch.Tensor:
    """The orthonormal DCT-II as a matrix [num_bands, num_coefficients] (its first columns): what turns
    log filter-bank energies into cepstral coefficients."""
    n = torch.arange(num_bands, dtype=torch.float64)[:, None]
    k = torch.arange(num_coefficients, dtype=torch.float64)[None]
    basis = torch.cos(math.pi * k * (2 * n + 1) / (2 * num_bands)) * math.sqrt(2.0 / num_bands)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.to(torch.float32)


def per_file_zscore(values: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Each row standardised by the mean and deviation of all its real frames' values [B, T, D].

    One mean and deviation per recording, not per dimension: in the log domain a recording's loudness is
    an offset shared by every band, which this removes, while the shape of the spectrum across bands is
    kept. (Per-dimension statistics, cepstral mean normalisation, would also erase the spectrum of a
    steady sound: a tone's band would read as level as every other.) A silent recording is only centred.
    """
    weight = real[..., None].to(values.dtype).expand_as(values)
    count = weight.sum(dim=(1, 2), keepdim=True).clamp(min=1.0)
    mean = (values * weight).sum(dim=(1, 2), keepdim=True) / count
    std = ((((values - mean) * weight) ** 2).sum(dim=(1, 2), keepdim=True) / count).sqrt()
    constant = std <= 1e-4 * (1.0 + mean.abs())  # equal up to float32 rounding: dividing would amplify it
    return (values - mean) / torch.where(constant, torch.ones_like(std), std)


__all__ = ["dct_matrix", "frame_counts", "frames", "log_mel", "mel_filter_bank", "per_file_zscore", "resample",
           "resampled_length", "stft_magnitude"]
