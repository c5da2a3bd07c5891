"""The documentation's Python examples run, and assert what they show.

Every fenced ```` ```python ```` block of ``README.md`` and ``docs/*.md`` is
executed; the blocks of one page run in order, together. Other fences
(``console``, ``text``, ``json``...) are not run. Each page runs twice:

- **As a script**, the way a reader runs it: the page's blocks pasted into one
  file, run by ``python file.py`` in a fresh process, from an empty directory.
  This is what catches a page that only works inside the test suite: a
  process pool started without an ``if __name__ == "__main__":`` guard (its
  spawned workers import the main module again), or a page relying on what
  the suite set up (its logging configuration, its working directory, the
  modules it had imported). Dev-only packages the suite has installed are
  caught statically: a page must not import them.
- **In this process**, as a module registered in ``sys.modules`` (application
  code is, and worq finds the attrs classes and enums an example defines
  there). This run adds what a script cannot show: the suite's
  warnings-as-errors (``filterwarnings = error``, unraisable exceptions
  included), and a check that the page stopped every worker pool it started,
  which in a script would go unnoticed as pool threads are daemons. Its
  module is not ``__main__``, so it skips what a page guards by
  ``if __name__ == "__main__":``; the script run covers that.

``make demo`` is checked here too, against the output the README shows.
"""

from __future__ import annotations

import ast
import itertools
import logging
import os
import re
import subprocess
import sys
import threading
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import structlog

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

SCRIPT_TIMEOUT = 60.0
"""Seconds one page's script, or ``make demo``, may take; each takes a few."""


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


def python_blocks(page: Path) -> list[Block]:
    """The page's python blocks; every page has some."""
    blocks = [b for b in fenced_blocks(page.read_text()) if b.lang == "python"]
    assert blocks, f"{page.name} has no python examples"
    return blocks


def page_script(page: Path) -> str:
    """The page's python blocks as one script, each block's lines at their Markdown line numbers.

    What a reader gets by pasting the blocks into one file, but with the prose
    between them kept as blank lines: a traceback's line N is then line N of
    the page. Line 1 is never a block's (a fence opens every block), so it
    says where the script comes from.
    """
    lines = [f"# The python examples of {page.relative_to(ROOT)}, each at its line there."]
    for block in python_blocks(page):
        lines += [""] * (block.first_line - 1 - len(lines))
        lines += block.body.splitlines()
    return "\n".join(lines) + "\n"


def user_environment() -> dict[str, str]:
    """The environment of a reader's shell, with this checkout's worq importable.

    The suite's own settings (``WORQ_*``: log setup, a Redis URL) and those of
    an enclosing ``make`` (which would make a nested make print its directory)
    are dropped. ``src`` comes first on ``PYTHONPATH`` so that the worq under
    test is the one imported; ``tests`` is not importable, as for a reader.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("WORQ_") and name not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def run_to_completion(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a reader's environment; fail the test, showing its output, on timeout."""
    try:
        return subprocess.run(
            command,
            cwd=cwd,
            env=user_environment(),
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        # Captured output comes as bytes here, whatever text=True says.
        out, err = ((s or b"").decode(errors="replace") for s in (exc.stdout, exc.stderr))
        pytest.fail(f"{command} still running after {SCRIPT_TIMEOUT}s\n{out}\n{err}")


def imported_modules(source: str) -> Iterator[tuple[int, str]]:
    """(line, top-level module) for each absolute import in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module.split(".")[0]


def module_names(requirements: list[str]) -> set[str]:
    """The top-level modules of the distributions some requirement strings name.

    Each of worq's dev packages is imported under its distribution name,
    dashes made underscores (``pytest-timeout`` is ``pytest_timeout``).
    """
    return {
        re.split(r"[^A-Za-z0-9._-]", requirement.strip(), maxsplit=1)[0].replace("-", "_").lower()
        for requirement in requirements
    }


def dev_only_modules() -> set[str]:
    """The modules of worq's ``dev`` extra, which a reader need not have.

    Read from ``pyproject.toml``, so that a package added there is covered.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements: list[str] = project["optional-dependencies"]["dev"]
    return module_names(requirements)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo the logging configuration a page makes, so that it cannot leak into later tests.

    events.md configures structlog and the ``worq`` logger; ``worq.cli.main``
    in cli.md also puts a handler on the root logger, bound to the stderr
    this test captures.
    """
    saved = structlog.get_config()
    loggers = [logging.getLogger("worq"), logging.getLogger()]
    states = [(log.level, list(log.handlers), log.propagate) for log in loggers]
    try:
        yield
    finally:
        structlog.configure(**saved)
        for log, (level, handlers, propagate) in zip(loggers, states, strict=True):
            log.setLevel(level)
            log.handlers[:] = handlers
            log.propagate = propagate


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
    name = f"worq_docs_{page.stem.lower()}"
    module = types.ModuleType(name)
    module.__file__ = str(page)
    threads_before = worker_threads()
    sys.modules[name] = module
    try:
        for block in python_blocks(page):
            # Leading newlines keep tracebacks pointing at the Markdown line.
            source = "\n" * (block.first_line - 1) + block.body
            exec(compile(source, str(page), "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    leftover = worker_threads() - threads_before
    assert not leftover, (
        f"{page.name} left worker threads running: {sorted(t.name for t in leftover)}"
    )


@pytest.mark.timeout(SCRIPT_TIMEOUT + 30)
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_runs_as_a_script(page: Path, tmp_path: Path) -> None:
    """The page's python blocks, pasted into one file, run with ``python file.py``."""
    script = tmp_path / f"{page.stem}_md.py"  # not a module name a page imports
    script.write_text(page_script(page))
    done = run_to_completion([sys.executable, str(script)], cwd=tmp_path)
    assert done.returncode == 0, (
        f"{script.name} (line N is line N of {page.name}) exited with {done.returncode}:\n"
        f"{done.stderr}"
    )


def test_page_script_keeps_markdown_line_numbers() -> None:
    """A block's first line in the script is its first line in the page."""
    page = ROOT / "docs" / "guide.md"
    lines = page_script(page).splitlines()
    for block in python_blocks(page):
        start = block.first_line - 1
        assert lines[start : start + block.body.count("\n")] == block.body.splitlines()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_needs_no_dev_package(page: Path) -> None:
    """A reader who installed worq alone can run the examples: none imports pytest & co."""
    dev = dev_only_modules()
    found = [
        f"{page.name}:{line} imports {module}"
        for line, module in imported_modules(page_script(page))
        if module in dev
    ]
    assert not found, f"examples import dev-only packages: {found}"


def test_module_names_of_requirements() -> None:
    """Versions, extras and markers are not part of the name; dashes become underscores."""
    requirements = ["pytest>=8", "pytest-timeout>=2.2", "Hypothesis[cli] >=6", "ruff; os_name"]
    assert module_names(requirements) == {"pytest", "pytest_timeout", "hypothesis", "ruff"}


def readme_demo_output() -> str:
    """What the README shows ``make demo`` printing: the lines after its prompt, to the next."""
    for block in fenced_blocks(README.read_text()):
        lines = block.body.splitlines() if block.lang == "console" else []
        for number, line in enumerate(lines):
            if line.split("#")[0].split() == ["$", "make", "demo"]:
                after = lines[number + 1 :]
                shown = itertools.takewhile(lambda out: not out.startswith("$"), after)
                return "".join(f"{out}\n" for out in shown)
    raise AssertionError("README.md shows no `$ make demo` in a console block")


@pytest.mark.timeout(SCRIPT_TIMEOUT + 30)
def test_make_demo_prints_what_the_readme_shows() -> None:
    """``make demo`` prints the README's lines, nothing more: no log lines on stderr.

    The demo runs in the virtualenv running this test, and ``-o`` keeps make
    from reinstalling it when ``pyproject.toml`` is newer than its stamp.
    """
    venv = Path(sys.prefix)
    command = ["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.installed", "demo"]
    done = run_to_completion(command, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == (readme_demo_output(), "")
