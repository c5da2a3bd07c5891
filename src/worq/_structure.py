"""Converting decoded JSON values to a task's annotations (cattrs).

The JSON codec rebuilds tagged values (Decimals, datetimes, attrs instances...)
itself while decoding; this converter then fits the result to a parameter's
or return value's annotation: instances pass through, a plain dict becomes
the annotated attrs class (when the class was not loaded where the value was
decoded), and plain ``int``/``str``/``bool``/``float`` are checked, not coerced.

A dict is input, so it becomes an instance by a call to the class, converters
and defaults included; an instance the codec rebuilt as sent is left alone.
Which classes the codec rebuilds whole is the codec's to say (its registry of
encodable types, :data:`worq._codec._TYPES`), so it hands them in.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.disambiguators import create_default_dis_func
from cattrs.preconf.orjson import make_converter

__all__ = ["is_attrs", "make_json_converter"]

_Hook = Callable[[Any, Any], Any]


def make_json_converter(passthrough: Iterable[type]) -> cattrs.Converter:
    """A cattrs converter for values :class:`JsonCodec` has already decoded.

    Decoding rebuilds Decimals, datetimes, attrs instances... itself, so the
    converter passes instances of the ``passthrough`` classes and of attrs
    classes through instead of parsing them again, while a plain dict (an
    attrs class the worker had not imported) still structures into its attrs
    class the usual cattrs way. Anything else given for a ``passthrough``
    class goes to cattrs' own hook for it, or is refused when it has none.
    """
    converter = make_converter()
    fallbacks = {cls: _fallback(converter, cls) for cls in passthrough}
    for cls, fallback in fallbacks.items():
        converter.register_structure_hook(cls, _passthrough(fallback))
    for kind in (int, str, bool, float):
        converter.register_structure_hook(kind, _exact(kind))
    converter.register_structure_hook_factory(
        is_attrs, lambda cl: _passthrough(converter.gen_structure_attrs_fromdict(cl))
    )
    converter.register_structure_hook_factory(_is_union, lambda u: _union_hook(converter, u))
    return converter


def _fallback(converter: cattrs.Converter, cls: type) -> _Hook:
    """cattrs' hook for ``cls``, looked up before any passthrough hook is registered.

    Before, so that a subclass (TaskExpired) does not get its base's
    (TaskFailure's) passthrough hook as its fallback.
    """
    try:
        return converter.get_structure_hook(cls)
    except cattrs.errors.StructureHandlerNotFoundError:
        return _refuse


def _is_union(hint: Any) -> bool:
    return get_origin(hint) is Union or type(hint) is types.UnionType


def is_attrs(hint: Any) -> bool:
    origin = get_origin(hint) or hint
    return isinstance(origin, type) and attrs.has(origin)


def _exact(kind: type) -> _Hook:
    """Accept only ``kind`` itself (a float also takes an int): no silent coercion.

    cattrs' default would turn ``2.9`` into ``2`` for an ``int`` parameter and
    ``42`` into ``"42"`` for a ``str`` one; a task should see the mistake.
    """
    accepted = (float, int) if kind is float else (kind,)

    def hook(value: Any, hint: Any) -> Any:
        if type(value) in accepted:
            return kind(value)
        raise TypeError(f"expected {kind.__name__}, got {type(value).__qualname__} {value!r:.40}")

    return hook


def _refuse(value: Any, hint: Any) -> Any:
    raise TypeError(f"expected {hint!r}, got a {type(value).__qualname__}")


def _passthrough(fallback: _Hook) -> _Hook:
    def hook(value: Any, hint: Any) -> Any:
        return value if isinstance(value, get_origin(hint) or hint) else fallback(value, hint)

    return hook


def _union_hook(converter: cattrs.Converter, union: Any) -> _Hook:
    """Pass a member's instance through; structure anything else into the member it fits."""
    others = tuple(m for m in get_args(union) if m is not type(None))
    optional = len(others) < len(get_args(union))
    classes = tuple(m for m in others if isinstance(m, type) and m is not Any)
    generics = [(o, m) for m in others if isinstance(o := get_origin(m), type)]
    pick = None
    if len(others) > 1 and all(is_attrs(m) for m in others):
        with contextlib.suppress(TypeError):  # no field tells them apart: no dicts then
            pick = create_default_dis_func(converter, *others)

    def hook(value: Any, _: Any) -> Any:
        if (value is None and optional) or isinstance(value, classes):
            return value
        for origin, member in generics:
            if isinstance(value, origin):
                return converter.structure(value, member)
        if len(others) == 1:
            return converter.structure(value, others[0])
        if pick is not None and isinstance(value, Mapping) and (cls := pick(value)) is not None:
            return converter.structure(value, cls)
        raise TypeError(f"cannot structure a {type(value).__qualname__} as {union!r}")

    return hook
