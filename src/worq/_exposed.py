"""A task function as a worker runs it: bound, converted from annotations, called."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from worq.typing import Codec

__all__ = ["NOOP_TASK", "ArgumentMismatch", "ExposedTask", "public_names"]

NOOP_TASK = "worq:noop"
"""A task every broker runs; its name cannot clash with a dotted task path."""


def public_names(tasks: Mapping[str, ExposedTask]) -> list[str]:
    """The names of the tasks a user exposed, sorted: every one but NOOP_TASK."""
    return sorted(name for name in tasks if name != NOOP_TASK)


class ArgumentMismatch(Exception):
    """The arguments do not fit the task's signature or annotations."""


@attrs.frozen
class ExposedTask:
    """A callable registered on a worker, with what is needed to call it from a message.

    Attributes:
        name: The dotted name clients use.
        fn: The function or bound method.
        signature: ``fn``'s signature; None for callables without one (some builtins).
        hints: Annotations of the parameters worth converting (not ``Any``),
            so JSON values become e.g. attrs instances or Decimals.
    """

    name: str
    fn: Callable[..., Any]
    signature: inspect.Signature | None
    hints: dict[str, Any]

    @classmethod
    def from_callable(cls, name: str, fn: Callable[..., Any]) -> ExposedTask:
        """Inspect ``fn`` once, when it is exposed, not on every call."""
        try:
            signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):  # builtins without introspectable signatures
            signature = None
        try:
            annotations = typing.get_type_hints(fn)
        except Exception:  # unresolvable forward references: call with values as decoded
            annotations = {}
        hints = {
            param: hint
            for param, hint in annotations.items()
            if param != "return" and hint is not Any and hint is not object
        }
        return cls(name, fn, signature, hints if signature is not None else {})

    def call(self, codec: Codec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call the task; arguments are first converted to the annotated types.

        Raises:
            ArgumentMismatch: The arguments do not fit the signature or annotations.
        """
        if self.hints:
            args, kwargs = self._convert(codec, args, kwargs)
        elif self.signature is not None:
            try:  # a TypeError from the call itself could come from inside the task
                self.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise ArgumentMismatch(f"TypeError: {exc}") from None
        return self.fn(*args, **kwargs)

    def _convert(
        self, codec: Codec, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        signature = self.signature
        if signature is None:  # never with hints: from_callable drops them
            return args, kwargs
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ArgumentMismatch(f"TypeError: {exc}") from None
        for param, value in bound.arguments.items():
            hint = self.hints.get(param)
            if hint is None:
                continue
            kind = signature.parameters[param].kind
            try:
                if kind is inspect.Parameter.VAR_POSITIONAL:
                    converted: Any = tuple(codec.structure(item, hint) for item in value)
                elif kind is inspect.Parameter.VAR_KEYWORD:
                    converted = {key: codec.structure(item, hint) for key, item in value.items()}
                else:
                    converted = codec.structure(value, hint)
            except Exception as exc:
                raise ArgumentMismatch(
                    f"argument {param!r} does not fit its annotation {_hint_name(hint)}: {exc}"
                ) from None
            bound.arguments[param] = converted
        return bound.args, bound.kwargs


def _hint_name(hint: Any) -> str:
    return hint.__qualname__ if isinstance(hint, type) else repr(hint)
