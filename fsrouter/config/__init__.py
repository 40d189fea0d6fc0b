"""Reading configuration from the outside world: the routing-rules file (and the daemon settings).

The core never reads files; this package turns them into validated core objects, with file:line problems.
The rules loader is imported on first use of one of its names: it brings in the rule schema, YAML, holidays and
phone numbers (~0.2 s), which commands that read no rules (``fsrouter --help``, ``fsrouter status``) never need.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Problem", "check_file", "load_rules", "parse_rules"]


def __getattr__(name: str) -> Any:
    """``fsrouter.config.load_rules`` and the other names of ``__all__``, from ``rules_loader`` (PEP 562)."""
    if name in __all__:
        return getattr(importlib.import_module("fsrouter.config.rules_loader"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
