"""Hyperparameter search over a config's `hyperopt` section: `framework.hyperopt.hyperopt(config, data)`.

config.py holds the section's schema and checks, spaces.py the search spaces, samplers.py Optuna's
samplers and pruners, search.py the run, results.py what it writes. Optuna loads when a search runs.
"""
from __future__ import annotations

__all__ = ["hyperopt", "HyperoptResult"]


def __getattr__(name: str):
    if name in __all__:
        from framework.hyperopt import search

        return getattr(search, name)
    raise AttributeError(f"module 'framework.hyperopt' has no attribute '{name}'")
