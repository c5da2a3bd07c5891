"""The client's half of Deferred arguments: each Deferred becomes a reference.

A Deferred may sit at any depth inside lists, tuples and dicts. At enqueue,
each one without a local value yet is replaced with an
:class:`~worq.models.ArgumentRef` that the backend resolves, and each one with
a value travels as that value in the message. The worker's half,
:func:`worq._arguments.resolve_refs`, swaps the references back; it lives
apart so that the worker side imports nothing of the client's.
"""

from __future__ import annotations

from typing import Any

import attrs

from worq._arguments import OUTER, holds, walk
from worq.deferred import ResultHandle
from worq.models import ArgumentRef

__all__ = ["ExtractedArguments", "extract_refs"]


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
    """Replace every Deferred (sync or async) in the arguments with a reference to its task."""
    if not (holds(args, ResultHandle, OUTER) or holds(kwargs, ResultHandle, OUTER)):
        return ExtractedArguments(args, kwargs)
    refs: dict[str, None] = {}
    resolved: dict[str, Any] = {}

    def swap(deferred: ResultHandle[Any]) -> ArgumentRef:
        if deferred.has_value():
            resolved[deferred.id] = deferred.outcome()
        else:
            refs[deferred.id] = None
        return ArgumentRef(deferred.id)

    new_args = walk(args, swap, ResultHandle, OUTER)
    new_kwargs = walk(kwargs, swap, ResultHandle, OUTER)
    return ExtractedArguments(new_args, new_kwargs, tuple(refs), resolved)
