"""Lazy public names for a package's ``__init__`` (PEP 562), shared by every package.

Ground floor: imports nothing from the project, so ``import coverage`` or ``import geo`` stays
free of geopandas and scipy until a public name is first used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` that load each name of ``where`` from its module on use.

    ``where`` maps a public name to its module, e.g. ``{"analyse": "coverage.analysis"}``.
    """

    def load(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(where[name]), name)
        msg = f"module {package!r} has no attribute {name!r}"
        raise AttributeError(msg)

    def names() -> list[str]:
        return sorted(where)

    return load, names
