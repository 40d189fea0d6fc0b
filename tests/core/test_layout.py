"""The routing core stays readable: one job per module, small modules, nothing that hides from the type checker."""

from __future__ import annotations

from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "fsrouter" / "core"
MODULES = sorted(CORE.rglob("*.py"))
#: the longest a core module may grow before it is split (issue 10: a reader finds a behaviour by file name)
MAX_LINES = 400


@pytest.mark.parametrize("module", MODULES, ids=lambda path: str(path.relative_to(CORE)))
def test_a_core_module_is_at_most_400_lines_and_has_no_type_ignore(module: Path) -> None:
    text = module.read_text()

    assert len(text.splitlines()) <= MAX_LINES
    assert "type: ignore" not in text
