"""Shared by the trigger tests: the hook, and closing shared channels."""

from __future__ import annotations

import pytest

from cpsign_airflow.hooks.pachyderm import PachydermHook, aclose_shared_channels


@pytest.fixture(autouse=True)
async def _close_shared_channels():
    """Each test runs in its own loop: close its shared channels before the loop closes."""
    yield
    await aclose_shared_channels()


@pytest.fixture
def hook(pachyderm_conn) -> PachydermHook:
    hook = PachydermHook(pachyderm_conn, retry_backoff=0.01, retry_backoff_max=0.05)
    yield hook
    hook.close()
