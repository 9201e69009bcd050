"""Lazy re-exports: a package's public names, imported on first use (PEP 562).

``adk`` and ``adk.serving`` list their public names in a table of name →
module; a name's module is imported only when the name is first read, so that
importing the package stays cheap and an app that never uses a part never
loads it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for its table ``exports``.

    A name, once imported, is stored in the package's namespace, so later
    reads are plain attribute lookups.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
