"""Audio signal processing pinned against hand computations: STFT peaks, mel filters, DCT, resampling."""
import numpy as np
import pytest
import torch
from audio_tones import tone

from framework.features import audio_dsp as dsp

RATE = 16000


def spectrum_peak_hz(wave: np.ndarray, sample_rate: int) -> float:
    magnitude = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(magnitude) * sample_rate / len(wave))


def test_stft_magnitude_of_a_pure_tone_peaks_at_its_bin_and_equals_numpys_fft():
    wave = torch.from_numpy(tone(1000.0))[None]  # 1000 Hz = bin 32 of a 512-point FFT at 16 kHz
    magnitude = dsp.stft_magnitude(wave, window=400, shift=160, num_fft_points=512)
    assert magnitude.shape == (1, 1 + (4000 - 400) // 160, 257)
    assert (magnitude[0].argmax(dim=1) == 32).all()
    frame = wave[0, 160 * 3:160 * 3 + 400].numpy()  # the fourth frame, by hand
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)  # periodic Hann
    np.testing.assert_allclose(magnitude[0, 3].numpy(), np.abs(np.fft.rfft(frame * hann, n=512)), atol=1e-4)


def test_frame_counts_and_short_rows_read_as_one_padded_window():
    counts = dsp.frame_counts(torch.tensor([4000, 400, 399, 1]), window=400, shift=160)
    assert counts.tolist() == [23, 1, 1, 1]
    assert dsp.frames(torch.ones(2, 100), window=400, shift=160).shape == (2, 1, 400)


def test_mel_filters_are_triangles_peaking_at_centres_equally_spaced_in_mel():
    bank = dsp.mel_filter_bank(num_bands=40, num_fft_points=512, sample_rate=RATE).numpy()
    assert bank.shape == (257, 40) and bank.min() >= 0 and bank.max() <= 1
    mel_top = 2595 * np.log10(1 + 8000 / 700)
    centres = 700 * (10 ** (np.linspace(0, mel_top, 42)[1:-1] / 2595) - 1)  # by hand: HTK mel
    assert (np.abs(bank.argmax(axis=0) - centres / (RATE / 512)) < 1).all()  # one of the 2 bins around it
    assert (bank.sum(axis=0) > 0).all()  # no empty filter at 40 bands
    edges = np.concatenate([[0], centres, [8000]])
    left, centre, right = edges[20:23]  # filter 20, by hand: up from its left neighbour's centre, down to the right's
    hz = np.arange(257) * RATE / 512
    triangle = np.clip(np.minimum((hz - left) / (centre - left), (right - hz) / (right - centre)), 0, None)
    np.testing.assert_allclose(bank[:, 20], triangle, atol=1e-5)  # float32 of the float64 design


@pytest.mark.parametrize("frequency", [300.0, 800.0, 2000.0])
def test_log_mel_energy_of_a_tone_is_largest_in_the_band_centred_nearest_it(frequency):
    wave = torch.from_numpy(tone(frequency))[None]
    bank = dsp.mel_filter_bank(40, 512, RATE)
    fbank = dsp.log_mel(dsp.stft_magnitude(wave, 400, 160, 512), bank)
    assert fbank.shape == (1, 23, 40)
    peak_hz = dsp._mel_to_hz(torch.linspace(0, float(dsp._hz_to_mel(torch.tensor(8000.0))), 42))[1:-1]
    nearest = int(torch.argmin((peak_hz - frequency).abs()))
    assert abs(int(fbank[0].mean(dim=0).argmax()) - nearest) <= 1  # a tone between two centres lights both


def test_mfcc_is_the_orthonormal_dct_of_the_log_mel_energies():
    basis = dsp.dct_matrix(num_bands=40, num_coefficients=13).numpy()
    x = np.random.default_rng(0).normal(size=40)
    by_hand = [np.sqrt((1 if k == 0 else 2) / 40) * sum(x[n] * np.cos(np.pi * k * (2 * n + 1) / 80) for n in range(40))
               for k in range(13)]
    np.testing.assert_allclose(x @ basis, by_hand, atol=1e-5)
    full = dsp.dct_matrix(40, 40).numpy()
    np.testing.assert_allclose(full.T @ full, np.eye(40), atol=1e-5)  # orthonormal: energy kept


@pytest.mark.parametrize("orig, new", [(16000, 8000), (8000, 16000), (44100, 16000), (22050, 16000)])
def test_resampling_keeps_a_tones_frequency_and_the_expected_length(orig, new):
    wave = tone(1000.0, seconds=0.5, sample_rate=orig)
    out = dsp.resample(torch.from_numpy(wave)[None], orig, new)[0].numpy()
    assert len(out) == int(np.ceil(len(wave) * new / orig))
    assert spectrum_peak_hz(out, new) == pytest.approx(1000.0, abs=new / len(out))
    middle = out[len(out) // 4:3 * len(out) // 4]
    assert np.sqrt(np.mean(middle ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)  # amplitude kept


def test_downsampling_removes_what_would_alias_rather_than_folding_it():
    """A 6 kHz tone has no place at 8 kHz (Nyquist 4 kHz): a band-limited resampler removes it, where
    taking every other sample would fold it onto 2 kHz at full strength."""
    wave = tone(6000.0, seconds=0.5)
    out = dsp.resample(torch.from_numpy(wave)[None], RATE, 8000)[0].numpy()
    assert np.sqrt(np.mean(out[500:-500] ** 2)) < 0.01 * np.sqrt(np.mean(wave[::2] ** 2))


def test_resampling_agrees_with_scipys_polyphase_resampler():
    signal = pytest.importorskip("scipy.signal")
    # tones below 3 kHz, clear of both resamplers' transition bands under the 4 kHz Nyquist rate
    low = sum(tone(frequency, 0.5) for frequency in (200.0, 1100.0, 2900.0)) / 3
    out = dsp.resample(torch.from_numpy(low)[None], 16000, 8000)[0].numpy()
    np.testing.assert_allclose(out[100:-100], signal.resample_poly(low, 1, 2)[100:-100], atol=2e-3)


def test_rows_of_a_batch_resample_as_they_would_alone():
    a, b = tone(500.0, 0.1), tone(1500.0, 0.2)
    batch = torch.zeros(2, len(b))
    batch[0, :len(a)], batch[1] = torch.from_numpy(a), torch.from_numpy(b)
    together = dsp.resample(batch, RATE, 8000)
    alone = dsp.resample(torch.from_numpy(a)[None], RATE, 8000)[0]
    torch.testing.assert_close(together[0, :len(alone)], alone, atol=1e-6, rtol=0)


def test_per_file_zscore_standardises_each_row_over_its_real_frames_only():
    values = torch.randn(2, 5, 3) * 4 + 7
    real = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out = dsp.per_file_zscore(values, real)
    for row, count in ((0, 5), (1, 3)):
        kept = out[row, :count]
        assert abs(float(kept.mean())) < 1e-5 and abs(float(kept.std(unbiased=False)) - 1) < 1e-5
        expected = (values[row, :count] - values[row, :count].mean()) / values[row, :count].std(unbiased=False)
        torch.testing.assert_close(kept, expected, atol=1e-5, rtol=0)  # one mean and deviation a row
    constant = dsp.per_file_zscore(torch.full((1, 4, 2), 3.0), torch.ones(1, 4, dtype=torch.bool))
    assert torch.equal(constant, torch.zeros(1, 4, 2))  # silence is centred, not divided by 0
