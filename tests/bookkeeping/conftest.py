"""A migrated ledger on each bookkeeping backend (MariaDB and SQLite), for the ledger tests."""

from __future__ import annotations

import pytest

from cpsign_airflow.bookkeeping.engine import RetryPolicy
from cpsign_airflow.bookkeeping.ledger import TrainingLedger


@pytest.fixture
def ledger(bookkeeping_url):
    led = TrainingLedger.from_url(bookkeeping_url, retry=RetryPolicy(attempts=3, backoff=0.01))
    led.upgrade_schema()
    yield led
    led.dispose()
