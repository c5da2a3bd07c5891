"""worq's Lua scripts, each loaded with the helpers of ``_lib.lua`` it uses.

Redis runs a script's whole source on every call, so each helper prepended
to a script is defined again, a closure made, on every call: the whole
library cost about 7 µs of the server's CPU per call, warm, and more in a
busy server's cold caches, on every one of the four or so calls a task
makes. A script is therefore loaded with only the helpers it names, and the
helpers those name, in the library's order (a helper is defined before the
helpers that use it).

The library is cut into definitions at its top-level lines: ``local function
NAME``, ``local NAME =`` and ``function key.NAME`` (one per key builder,
each needing ``key``). The comment lines above a definition go with it.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable

import attrs

__all__ = ["sources"]

_DEFINITION = re.compile(r"^(?:local function (\w+)|local (\w+) =|function key\.(\w+))")
_NAME = re.compile(r"(?<![\w.:])(key\.\w+|\w+)")
_NOT_CODE = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|--[^\n]*")
"""A string literal or a comment (the scripts' strings hold no quote of the other kind
and no escaped quote, and no long brackets)."""


@attrs.frozen
class _Definition:
    """One top-level definition of the library: its name (``key.task`` for a key
    builder), its text, and the library names its text uses."""

    name: str
    text: str
    uses: frozenset[str]


def sources(names: Iterable[str]) -> dict[str, str]:
    """The source of each script named, as loaded: the helpers it uses, then its own text."""
    folder = importlib.resources.files(__name__)
    library = _definitions(folder.joinpath("_lib.lua").read_text("utf-8"))
    loaded = {}
    for name in names:
        own = folder.joinpath(f"{name}.lua").read_text("utf-8")
        needed = _needed(library, _names_in(own))
        helpers = "".join(d.text for d in library if d.name in needed)
        loaded[name] = helpers + own
    return loaded


def _definitions(library: str) -> list[_Definition]:
    """The library cut into its top-level definitions, in order."""
    cuts: list[tuple[str, list[str]]] = []
    comments: list[str] = []
    for line in library.splitlines(keepends=True):
        found = _DEFINITION.match(line)
        if found:
            local_function, local_value, key_builder = found.groups()
            name = local_function or local_value or f"key.{key_builder}"
            cuts.append((name, [*comments, line]))
            comments = []
        elif line.startswith("--") or not line.strip():
            comments.append(line)
        elif cuts:  # the body of the definition above
            cuts[-1][1].extend([*comments, line])
            comments = []
    known = {name for name, _ in cuts}
    definitions = []
    for name, lines in cuts:
        text = "".join(lines)
        uses = (_names_in(text) & known) - {name}
        if name.startswith("key."):
            uses |= {"key"}
        definitions.append(_Definition(name, text, frozenset(uses)))
    return definitions


def _names_in(text: str) -> set[str]:
    """Every name and ``key.<builder>`` the code mentions, outside its strings and comments
    (a hash field called ``lease`` is no call of the ``lease`` helper)."""
    return set(_NAME.findall(_NOT_CODE.sub(" ", text)))


def _needed(library: list[_Definition], used: set[str]) -> set[str]:
    """The library names ``used``, with every name those use in turn."""
    by_name = {d.name: d for d in library}
    needed: set[str] = set()
    todo = [name for name in used if name in by_name]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(by_name[name].uses)
    return needed
