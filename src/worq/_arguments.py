"""Deferred results inside task arguments: swapped out at enqueue, back in at run.

A Deferred may sit at any depth inside lists, tuples and dicts, down to the
codecs' :data:`~worq._codec.MAX_DEPTH` levels. The client replaces each one
that has no local value yet with an :class:`ArgumentRef` (and each one that
does with its value); the worker replaces each reference with the result the
backend handed over. Containers deeper than that are left as they are, unread:
the walks stay far from the recursion limit, and the codec then refuses the
value with an error that names the task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from worq._codec import MAX_DEPTH
from worq._deferred import Deferred
from worq._models import ArgumentRef

__all__ = ["ExtractedArguments", "extract_refs", "resolve_refs"]

_OUTER = -1  # depth of the args tuple and kwargs dict: they hold the values, not levels of them


def _walk(value: Any, leaf: Callable[[Any], Any], leaf_type: type, depth: int) -> Any:
    """Rebuild ``value`` with ``leaf`` applied to every ``leaf_type`` inside containers.

    ``depth`` counts the containers holding ``value``. Containers without a
    leaf inside, or too deep to send, are returned as they are, not copied.
    """
    if isinstance(value, leaf_type):
        return leaf(value)
    cls = type(value)
    if depth >= MAX_DEPTH:
        return value
    if cls is list or cls is tuple:
        items = [_walk(item, leaf, leaf_type, depth + 1) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return cls(items)
    if cls is dict:
        changed = {key: _walk(item, leaf, leaf_type, depth + 1) for key, item in value.items()}
        if all(changed[key] is item for key, item in value.items()):
            return value
        return changed
    return value


def _holds(value: Any, leaf_type: type, depth: int) -> bool:
    cls = type(value)
    if depth >= MAX_DEPTH and (cls is list or cls is tuple or cls is dict):
        return False
    if cls is list or cls is tuple:
        return any(_holds(item, leaf_type, depth + 1) for item in value)
    if cls is dict:
        return any(_holds(item, leaf_type, depth + 1) for item in value.values())
    return isinstance(value, leaf_type)


@attrs.frozen
class ExtractedArguments:
    """Arguments with every Deferred replaced by an :class:`ArgumentRef`.

    Attributes:
        args: Positional arguments.
        kwargs: Keyword arguments.
        refs: Ids of the referenced tasks whose results the backend must hand over.
        resolved: Outcomes (values or TaskFailures) of referenced tasks that the
            client already held, keyed by task id; they travel in the message.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    refs: tuple[str, ...] = ()
    resolved: dict[str, Any] = attrs.field(factory=dict)


def extract_refs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ExtractedArguments:
    """Replace every Deferred in the arguments with a reference to its task."""
    if not (_holds(args, Deferred, _OUTER) or _holds(kwargs, Deferred, _OUTER)):
        return ExtractedArguments(args, kwargs)
    refs: dict[str, None] = {}
    resolved: dict[str, Any] = {}

    def swap(deferred: Deferred[Any]) -> ArgumentRef:
        if deferred.has_value():
            resolved[deferred.id] = deferred.outcome()
        else:
            refs[deferred.id] = None
        return ArgumentRef(deferred.id)

    new_args = _walk(args, swap, Deferred, _OUTER)
    new_kwargs = _walk(kwargs, swap, Deferred, _OUTER)
    return ExtractedArguments(new_args, new_kwargs, tuple(refs), resolved)


def resolve_refs(
    args: tuple[Any, ...], kwargs: dict[str, Any], values: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Replace each :class:`ArgumentRef` with ``values[ref.task_id]``."""

    def swap(ref: ArgumentRef) -> Any:
        return values[ref.task_id]

    return _walk(args, swap, ArgumentRef, _OUTER), _walk(kwargs, swap, ArgumentRef, _OUTER)
