"""Importing every module of a component package, so that adding a component touches one file.

Each package's __init__ calls `import_submodules(__name__)`; the registries import the package the
first time a name is looked up. An import error in a component is raised, never swallowed.
"""
from __future__ import annotations

import importlib
import pkgutil


def import_submodules(package_name: str) -> None:
    package = importlib.import_module(package_name)
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package_name}.{module.name}")
