"""Data types: one module per type. Importing this package registers them all."""
from framework.features import binary, category, number  # noqa: F401
