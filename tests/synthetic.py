"""Small synthetic tabular data and configs over it, shared by tests (importable as `synthetic`)."""
import numpy as np
import pandas as pd


def synthetic_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Inputs x, z (numbers), color (category), flag (binary) and targets that follow simple rules:

    label: x > 0.3 (binary), amount: 3x - 2z + small noise (number),
    tier: low / mid / high by thresholds on x (category).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    return pd.DataFrame({
        "x": x,
        "z": z,
        "color": rng.choice(["red", "green", "blue"], size=n),
        "flag": rng.random(n) < 0.5,
        "label": x > 0.3,
        "amount": 3 * x - 2 * z + rng.normal(scale=0.05, size=n),
        "tier": np.where(x < -0.5, "low", np.where(x < 0.5, "mid", "high")),
    })


def tiny_config(inputs=("x", "z", "color"), outputs=(("label", "binary"),), **trainer) -> dict:
    """A config over the synthetic columns with a short, quiet trainer (settings overridable)."""
    types = {"x": "number", "z": "number", "color": "category", "flag": "binary"}
    return {
        "input_features": [{"name": name, "type": types[name]} for name in inputs],
        "output_features": [{"name": name, "type": kind} for name, kind in outputs],
        "combiner": {"type": "concat", "output_size": 32},
        "trainer": {"epochs": 3, "batch_size": 32, "learning_rate": 0.01, "progress_bar": False, **trainer},
    }
