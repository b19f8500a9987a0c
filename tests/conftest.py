"""Shared fixtures and collection hooks (the helpers that tests import live in ``tests/helpers.py``).

Every repository a test makes lives under its ``tmp_path``. After the test, the LMDB environments of
every repository found there are closed (each maps 1 TiB of address space, and the engine keeps
environments open for the life of the process), and any child process still running is killed.

Markers: ``fuse`` (mounts a real FUSE filesystem; every test that uses the ``mounts`` fixture gets it)
and ``slow`` (every ``fuse`` test and every property-based test: hypothesis ``@given`` tests and state
machines). ``scripts/test --fast`` runs the tests that are not ``slow``; ``scripts/test`` runs all.
"""

from __future__ import annotations

import unittest
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import is_hypothesis_test

from hangarfs import Repository
from tests.helpers import Children, new_repository, release_repositories


def is_property_test(item: pytest.Item) -> bool:
    """A hypothesis test: a ``@given`` function, or the test case of a rule-based state machine."""
    if is_hypothesis_test(getattr(item, 'obj', None)):
        return True
    cls = getattr(item, 'cls', None)
    run = getattr(cls, 'runTest', None)
    return (
        isinstance(cls, type)
        and issubclass(cls, unittest.TestCase)
        and run is not None
        and run.__module__ == 'hypothesis.stateful'
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if 'mounts' in getattr(item, 'fixturenames', ()):
            item.add_marker(pytest.mark.fuse)
        if item.get_closest_marker('fuse') is not None or is_property_test(item):
            item.add_marker(pytest.mark.slow)


# ---------------------------------------------------------------------------------------- repositories


@pytest.fixture(autouse=True)
def _release_lmdb_environments(tmp_path: Path) -> Iterator[None]:
    yield
    release_repositories(tmp_path)


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return tmp_path / 'repo'


@pytest.fixture
def repo(repo_path: Path) -> Repository:
    """An initialized, empty repository in tmp_path (branch master, no commits)."""
    return new_repository(repo_path)


# ---------------------------------------------------------------------------------------- child processes


@pytest.fixture
def children() -> Iterator[Children]:
    kids = Children()
    try:
        yield kids
    finally:
        kids.cleanup()
