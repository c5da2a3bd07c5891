"""Fixtures shared by the whole suite.

``url`` is parametrized over every backend, so a behaviour test written once
runs against each of them.
"""

from __future__ import annotations

import itertools

import pytest

BACKENDS = ["memory"]

_memory_stores = itertools.count()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest) -> str:
    """A URL of an empty task queue backend, fresh for each test."""
    return f"memory://test-{next(_memory_stores)}"
