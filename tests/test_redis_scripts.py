"""The Lua scripts as loaded: each with the library helpers it uses, and only those."""

from __future__ import annotations

import re

import pytest

from worq.queue.redis import _SCRIPTS, _SOURCES

_LUA_KEYWORDS = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in",
    "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
}  # fmt: skip
_REDIS_GLOBALS = {
    "KEYS", "ARGV", "redis", "cjson", "cmsgpack", "bit", "struct", "math", "string", "table",
    "tonumber", "tostring", "ipairs", "pairs", "type", "unpack", "error", "pcall", "select",
    "next", "assert",
}  # fmt: skip
_NOT_CODE = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|--[^\n]*")
_DECLARATIONS = (
    re.compile(r"\blocal\s+function\s+(\w+)"),  # local function f
    re.compile(r"\blocal\s+(?!function\b)(\w+(?:\s*,\s*\w+)*)"),  # local a, b
    re.compile(r"\bfunction\s*[\w.]*\s*\(([^)]*)\)"),  # parameters
    re.compile(r"\bfor\s+(\w+(?:\s*,\s*\w+)*)\s+in\b"),  # for k, v in
    re.compile(r"\bfor\s+(\w+)\s*="),  # for i = 1, n
)
_FREE_NAME = re.compile(r"(?<![\w.:])([A-Za-z_]\w*)\b(?!\s*=(?!=))")
"""A name read: not a field (``a.b``), a table constructor's key or an assignment's target."""


def _undefined(source: str) -> set[str]:
    """Names the code reads that nothing in it declares and Redis does not provide."""
    code = _NOT_CODE.sub(" ", source)
    declared: set[str] = set()
    for declaration in _DECLARATIONS:
        for names in declaration.findall(code):
            declared.update(n for n in re.split(r"[\s,]+", names) if n and n != "...")
    used = set(_FREE_NAME.findall(code))
    return used - declared - _LUA_KEYWORDS - _REDIS_GLOBALS


@pytest.mark.parametrize("name", _SCRIPTS)
def test_every_name_a_loaded_script_reads_is_defined_in_it(name: str) -> None:
    """A helper of _lib.lua a script uses and its loading left out would only fail
    when that line ran: the loaded source is checked for it instead."""
    assert _undefined(_SOURCES[name]) == set()


def test_the_check_finds_a_helper_left_out() -> None:
    """The check above can fail: get.lua without the lease helper reads it undefined."""
    source = _SOURCES["get"]
    start = source.index("local function lease(")
    end = source.index("\nend\n", start) + len("\nend\n")
    assert _undefined(source[:start] + source[end:]) == {"lease"}


def test_a_script_is_loaded_without_the_helpers_it_does_not_use() -> None:
    """Every helper defined costs server CPU on every call of its script."""
    assert "local function now_ms(" in _SOURCES["status"]
    assert "local function lease(" not in _SOURCES["status"]
    assert "function key.task(" not in _SOURCES["status"]
    assert "local function store_task(" in _SOURCES["enqueue"]
    assert "local function file_failure(" not in _SOURCES["enqueue"]
    assert "local function file_failure(" in _SOURCES["set_result"]
