"""Decoders: one module each. Importing this package registers them all."""
from decoders import classifier, regressor  # noqa: F401
