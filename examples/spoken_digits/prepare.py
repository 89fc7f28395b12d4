"""Synthesize the spoken digits "zero" to "nine" with espeak-ng in many voices, speeds and pitches,
as wav files and a CSV of their paths, digits and splits.

    sudo apt-get install espeak-ng
    python examples/spoken_digits/prepare.py            # 60 speaker variants x 10 digits = 600 files
    python examples/spoken_digits/prepare.py --all      # every variant of the grid: 325 x 10 files
    framework train --config examples/spoken_digits/config.yaml --dataset examples/spoken_digits/spoken_digits.csv

A speaker variant is one voice at one speed and pitch, and says all ten digits. Every variant of the
HELD_OUT voices is the test split, so the test accuracy is measured on voices the model never heard;
a tenth of the other variants (all their digits together) is the validation split.

The CSV holds absolute paths: an audio feature reads a relative path from the working directory, and
the command above runs from the repository's root.
"""
from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICES = ("en", "en-us", *(f"en+m{i}" for i in range(1, 8)), *(f"en+f{i}" for i in range(1, 5)))
SPEEDS = (120, 140, 160, 180, 200)  # words a minute
PITCHES = (30, 40, 50, 60, 70)  # 0-99, espeak-ng's default 50
HELD_OUT = ("en+m7", "en+f4")  # voices only the test split has
VALIDATION_FRACTION = 0.1


def espeak() -> str | None:
    return shutil.which("espeak-ng")


def variants(count: int | None, seed: int) -> list[tuple[str, int, int]]:
    """`count` (voice, speed, pitch) variants drawn from the grid without repeats, every held-out voice
    among them; None: the whole grid."""
    grid = list(itertools.product(VOICES, SPEEDS, PITCHES))
    if count is None:
        return grid
    rng = np.random.default_rng(seed)
    order = [grid[i] for i in rng.permutation(len(grid))]
    firsts = [next(v for v in order if v[0] == voice) for voice in HELD_OUT]  # a test split however few are drawn
    rest = [v for v in order if v not in firsts]
    return firsts + rest[:max(0, count - len(firsts))]


def _say(text: str, voice: str, speed: int, pitch: int, path: Path) -> None:
    subprocess.run([espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
                   check=True, capture_output=True)


def prepare(out: Path, count: int | None = 60, seed: int = 0) -> Path:
    """wav files under out/wavs/ and out/spoken_digits.csv; espeak-ng runs in parallel processes."""
    chosen = variants(count, seed)
    rng = np.random.default_rng(seed + 1)
    trained = [v for v in chosen if v[0] not in HELD_OUT]
    validation = set(rng.permutation(len(trained))[:int(round(len(trained) * VALIDATION_FRACTION))].tolist())
    roles = {v: "validation" if i in validation else "train" for i, v in enumerate(trained)}
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    rows, jobs = [], []
    for (voice, speed, pitch), digit in itertools.product(chosen, DIGITS):
        path = (out / "wavs" / f"{digit}_{voice.replace('+', '_')}_s{speed}_p{pitch}.wav").resolve()
        jobs.append((digit, voice, speed, pitch, path))
        rows.append({"audio_path": str(path), "digit": digit, "voice": voice, "speed": speed, "pitch": pitch,
                     "split": roles.get((voice, speed, pitch), "test")})
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # each job waits on its own process
        list(pool.map(lambda job: _say(*job), jobs))
    csv = out / "spoken_digits.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=60, help="speaker variants (voice, speed, pitch), "
                                                                  "each saying all ten digits")
    parser.add_argument("--all", action="store_true", help=f"every variant: {len(VOICES)} voices x "
                                                           f"{len(SPEEDS)} speeds x {len(PITCHES)} pitches")
    parser.add_argument("--out", type=Path, default=HERE, help="where wavs/ and spoken_digits.csv go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if espeak() is None:
        sys.exit("espeak-ng is not installed: sudo apt-get install espeak-ng")
    csv = prepare(args.out, None if args.all else args.variants, args.seed)
    frame = pd.read_csv(csv)
    print(f"wrote {csv} ({len(frame)} recordings; " +
          ", ".join(f"{n} {role}" for role, n in frame["split"].value_counts().items()) + ")")


if __name__ == "__main__":
    main()
