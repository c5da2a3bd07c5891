"""mypy rejects misuse of the typed API (tests/typing/fail_*.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api

TYPING = Path(__file__).parent / "typing"
ROOT = Path(__file__).parent.parent
EXPECTED = re.compile(r"#\s*E:\s*([a-z-]+)")


def expected_errors(path: Path) -> set[tuple[int, str]]:
    """The (line, error code) pairs a file marks with ``# E: code``."""
    found = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = EXPECTED.search(line)
        if match:
            found.add((number, match.group(1)))
    return found


@pytest.mark.parametrize("path", sorted(TYPING.glob("fail_*.py")), ids=lambda p: p.name)
def test_mypy_rejects(path: Path) -> None:
    """mypy --strict reports exactly the errors the file marks, on the marked lines."""
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "mypy.ini"), str(path)])
    assert status == 1, stdout + stderr
    reported = {
        (int(match.group(1)), match.group(2))
        for match in re.finditer(rf"{re.escape(path.name)}:(\d+): error: .*\[([a-z-]+)\]", stdout)
    }
    assert reported == expected_errors(path), stdout
