"""Every broken rules file in tests/fixtures/rules/broken reports exactly the errors written at its top.

Each file starts with one or more ``# expect: LINE: error: message fragment`` comments; the check must
print an error on that line containing that fragment, and no error on any other line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fsrouter.config.rules_loader import check_file

BROKEN = Path(__file__).parents[1] / "fixtures" / "rules" / "broken"
EXPECT = re.compile(r"^# expect: (\d+): error: (.+)$", re.MULTILINE)


def expectations(path: Path) -> list[tuple[int, str]]:
    return [(int(line), fragment) for line, fragment in EXPECT.findall(path.read_text(encoding="utf-8"))]


BROKEN_FILES = sorted(BROKEN.glob("*.yaml"))


def test_there_are_at_least_fifteen_distinct_mistakes() -> None:
    assert len(BROKEN_FILES) >= 15
    assert all(expectations(path) for path in BROKEN_FILES)


@pytest.mark.parametrize("path", BROKEN_FILES, ids=lambda path: path.stem)
def test_check_reports_the_expected_error_on_the_expected_line(path: Path) -> None:
    errors, _ = check_file(str(path))

    rendered = [str(error) for error in errors]
    for line, fragment in expectations(path):
        assert any(
            text.startswith(f"{path}:{line}: error: ") and fragment in text for text in rendered
        ), f"no '{line}: error: ...{fragment}...' in:\n" + "\n".join(rendered)
    expected_lines = {line for line, _ in expectations(path)}
    assert {error.line for error in errors} == expected_lines, "\n".join(rendered)
