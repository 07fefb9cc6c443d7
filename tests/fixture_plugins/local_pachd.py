"""Pytest plugin: ``pytest_plugins = ["fixture_plugins.local_pachd"]`` (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cpsign_airflow.testing.pachd.server import LocalPachd


@pytest.fixture
def local_pachd() -> Iterator[LocalPachd]:
    """A started :class:`LocalPachd` on a free loopback port, stopped afterwards."""
    with LocalPachd(host="127.0.0.1", port=0) as pachd:
        yield pachd
