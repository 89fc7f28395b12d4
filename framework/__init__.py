"""framework: declarative deep learning. `Model(config).train(data)`.

Heavy libraries (torch, pandas) load when a Model is first used, not at import.
"""
from framework.version import __version__

__all__ = ["Model", "__version__"]


def __getattr__(name: str):
    if name == "Model":
        from framework.api import Model

        return Model
    raise AttributeError(f"module 'framework' has no attribute '{name}'")
