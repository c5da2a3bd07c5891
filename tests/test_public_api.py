"""The shape of the public API: public types are public, the worker side stands alone."""

from __future__ import annotations

import ast
import importlib
import inspect
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import worq

PUBLIC_MODULES = [
    "worq",
    "worq.const",
    "worq.core",
    "worq.deferred",
    "worq.exceptions",
    "worq.models",
    "worq.pool.process",
    "worq.pool.thread",
    "worq.queue.memory",
    "worq.queue.redis",
    "worq.runner",
    "worq.task",
    "worq.testing",
    "worq.typing",
]
"""Every module without a leading underscore that a user imports from."""

SRC = Path(worq.__file__).parent

WORKER_SIDE = ["runner.py", "_arguments.py", "pool/_pipeline.py", "pool/_leases.py"]
WORKER_SIDE += ["pool/_worker.py", "pool/_outages.py"]
CLIENT_SIDE = {"worq.task", "worq.deferred", "worq._extract"}


def _namespace() -> dict[str, Any]:
    """Every public name, to resolve annotations that modules import only for type checking."""
    names: dict[str, Any] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names.update({name: getattr(module, name) for name in getattr(module, "__all__", [])})
    return names


def _public_callables(module: ModuleType) -> Iterator[tuple[str, Any]]:
    """(qualified name, object) of each public function, class, method and property."""
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj.__init__
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, property):
                    member = member.fget
                elif isinstance(member, classmethod | staticmethod):
                    member = member.__func__
                if inspect.isfunction(member):
                    yield f"{module.__name__}.{name}.{attr}", member
        elif inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj


def _types_in(hint: Any) -> Iterator[Any]:
    """Every class a (resolved) annotation names, at any depth."""
    if inspect.isclass(hint):
        yield hint
    for arg in typing.get_args(hint):
        yield from _types_in(arg)
    origin = typing.get_origin(hint)
    if inspect.isclass(origin):
        yield origin


def _private(cls: type) -> bool:
    module = getattr(cls, "__module__", "")
    return module.startswith("worq") and any(p.startswith("_") for p in module.split("."))


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_signatures_name_only_public_types(module_name: str) -> None:
    """No public signature names a type defined in a ``worq._private`` module."""
    module = importlib.import_module(module_name)
    namespace = _namespace()
    offenders = []
    for where, fn in _public_callables(module):
        fn = inspect.unwrap(fn)
        globalns = {**namespace, **getattr(fn, "__globals__", {})}
        hints = typing.get_type_hints(fn, globalns=globalns)
        for hint in hints.values():
            offenders += [f"{where}: {cls.__module__}.{cls.__qualname__}" for cls in _types_in(hint)
                          if _private(cls)]  # fmt: skip
    assert offenders == []


def test_public_types_are_importable_from_public_modules() -> None:
    """The value types of the worker-side signatures come from public modules."""
    from worq.core import Broker

    def returns(fn: Any) -> set[str]:
        hints = typing.get_type_hints(fn, globalns={**_namespace(), **fn.__globals__})
        return {cls.__module__ for cls in _types_in(hints["return"])}

    assert returns(Broker.next_task) == {"worq.models", "builtins", "types"}  # TaskMessage | None
    assert returns(Broker.take) <= {"worq.models", "builtins", "types"}
    assert returns(Broker.execute) == {"worq.models"}


def _imports(path: Path) -> set[str]:
    """The worq modules a source file imports (at any level, TYPE_CHECKING blocks included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("worq")}


@pytest.mark.parametrize("path", WORKER_SIDE)
def test_worker_side_imports_nothing_of_the_client(path: str) -> None:
    """Running tasks never needs Queue, Task or Deferred: the worker side does not import them."""
    assert _imports(SRC / path) & CLIENT_SIDE == set()


def test_only_core_reaches_the_backend_through_the_broker() -> None:
    """Nothing outside the two brokers touches ``broker.taskqueue``: a broker has a method
    for it (worq.core's Broker, and worq.aio's AsyncBroker on its async backend)."""
    brokers = {SRC / "core.py", SRC / "aio" / "_broker.py"}
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path not in brokers and ".taskqueue" in path.read_text()
    ]
    assert offenders == []
