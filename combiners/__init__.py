"""Combiners: one module per family, each registering its classes. Importing this package imports them all."""
from framework.discovery import import_submodules

import_submodules(__name__)
