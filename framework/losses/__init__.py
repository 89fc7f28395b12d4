"""Losses per output type, one module per family; importing the package registers them all."""
from framework.discovery import import_submodules

import_submodules(__name__)
