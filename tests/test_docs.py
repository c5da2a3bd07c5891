"""The documentation's Python examples run, and assert what they show.

Every fenced ```` ```python ```` block of ``README.md`` and ``docs/*.md`` is
executed; the blocks of one file run in order in one namespace, fresh for each
file. Other fences (``console``, ``text``, ``json``...) are not run. Each page
runs as a module registered in ``sys.modules``, as application code would be,
so that worq finds the attrs classes and enums its examples define.
"""

from __future__ import annotations

import logging
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import structlog

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@attrs.frozen
class Block:
    """One fenced code block: its language and body, and where its body starts."""

    lang: str
    body: str
    first_line: int


def fenced_blocks(text: str) -> list[Block]:
    """The top-level fenced code blocks of a Markdown text, in order."""
    blocks: list[Block] = []
    fence: str | None = None
    lang, start = "", 0
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if fence is None:
            if line.startswith("```"):
                fence = line[: len(line) - len(line.lstrip("`"))]
                lang, start, body = line[len(fence) :].strip().split(" ")[0], number + 1, []
        elif line.strip() == fence:
            blocks.append(Block(lang, "\n".join(body) + "\n", start))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"unclosed {fence} fence opened before line {start}"
    return blocks


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo the structlog and ``worq`` logger configuration a page makes (events.md does)."""
    saved = structlog.get_config()
    stdlib = logging.getLogger("worq")
    level, handlers, propagate = stdlib.level, list(stdlib.handlers), stdlib.propagate
    try:
        yield
    finally:
        structlog.configure(**saved)
        stdlib.setLevel(level)
        stdlib.handlers[:] = handlers
        stdlib.propagate = propagate


def worker_threads() -> set[threading.Thread]:
    """The live threads started by worq's thread pools."""
    return {t for t in threading.enumerate() if t.name.startswith("worq-")}


def test_fenced_blocks_parser() -> None:
    """Only fences are blocks; the language is the first word of the info string."""
    text = "intro\n```python\nx = 1\n```\n````text\n```\n````\n```console title\n$ ls\n```\n"
    assert fenced_blocks(text) == [
        Block("python", "x = 1\n", 3),
        Block("text", "```\n", 6),
        Block("console", "$ ls\n", 9),
    ]


@pytest.mark.timeout(20)
@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_examples(page: Path) -> None:
    """Every python block of the page runs, in order, in one fresh namespace."""
    blocks = [b for b in fenced_blocks(page.read_text()) if b.lang == "python"]
    assert blocks, f"{page.name} has no python examples"
    name = f"worq_docs_{page.stem.lower()}"
    module = types.ModuleType(name)
    module.__file__ = str(page)
    threads_before = worker_threads()
    sys.modules[name] = module
    try:
        for block in blocks:
            # Leading newlines keep tracebacks pointing at the Markdown line.
            source = "\n" * (block.first_line - 1) + block.body
            exec(compile(source, str(page), "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    leftover = worker_threads() - threads_before
    assert not leftover, (
        f"{page.name} left worker threads running: {sorted(t.name for t in leftover)}"
    )
