"""Combiners: one module each. Importing this package registers them all."""
from combiners import concat  # noqa: F401
