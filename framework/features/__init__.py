"""Data types: one module per type, each registering itself. Importing this package imports them all."""
from framework.discovery import import_submodules

import_submodules(__name__)
