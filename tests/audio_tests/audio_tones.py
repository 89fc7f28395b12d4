"""Tones written as audio files: the datasets of the audio tests (a module of its own, not the conftest,
so tests import it by a name no other test directory uses)."""
import numpy as np
import pandas as pd
import soundfile

FREQUENCIES = {"low": 300.0, "mid": 800.0, "high": 2000.0}


def tone(frequency: float, seconds: float = 0.25, sample_rate: int = 16000, noise: float = 0.0,
         rng: np.random.Generator | None = None) -> np.ndarray:
    """A sine at `frequency` Hz with a random phase and amplitude where `rng` is given, plus white noise."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    phase, amplitude = (rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.9)) if rng is not None else (0.0, 0.5)
    wave = amplitude * np.sin(2 * np.pi * frequency * t + phase)
    if noise:
        wave = wave + (rng or np.random.default_rng(0)).normal(scale=noise, size=len(t))
    return wave.astype(np.float32)


def write(path, wave: np.ndarray, sample_rate: int = 16000) -> str:
    soundfile.write(str(path), wave, sample_rate, subtype="FLOAT")
    return str(path)


def tone_frame(directory, n: int, seed: int, sample_rate: int = 16000) -> pd.DataFrame:
    """`n` noisy tones of the three FREQUENCIES (durations 0.2 to 0.3 s) as wav files, with their class,
    a number column `gain` that carries nothing, and the path of each file."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    classes = rng.choice(list(FREQUENCIES), size=n)
    paths = []
    for i, name in enumerate(classes):
        seconds = rng.uniform(0.2, 0.3)
        wave = tone(FREQUENCIES[name] * rng.uniform(0.97, 1.03), seconds, sample_rate, noise=0.2, rng=rng)
        paths.append(write(directory / f"{seed}_{i}.wav", wave, sample_rate))
    return pd.DataFrame({"clip": paths, "gain": rng.normal(size=n), "pitch": classes})
