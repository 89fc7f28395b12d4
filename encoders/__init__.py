"""Encoders: one module per family. Importing this package registers them all."""
from encoders import category, dense, passthrough  # noqa: F401
