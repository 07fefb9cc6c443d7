"""The keyed upsert every ledger write uses, on MariaDB and SQLite: insert, update, no-op,
and a concurrent writer caught by the unique constraint and re-read."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from cpsign_airflow.bookkeeping.errors import BookkeepingInputError
from cpsign_airflow.bookkeeping.store import upsert
from cpsign_airflow.bookkeeping.tables import workflows
from cpsign_airflow.bookkeeping.validation import JobInput, parse_list


def _new(project: str = "p") -> dict[str, Any]:
    from datetime import datetime

    now = datetime(2026, 12, 6, 12, 0, 0)
    return {"project": project, "config_repo": "config", "created_at": now, "updated_at": now}


def test_upsert_inserts_then_updates_then_changes_nothing(ledger):
    def write(**kw: Any) -> tuple[str, bool]:
        row, inserted = ledger._tx(
            "upserting", lambda conn: upsert(conn, workflows, {"name": "LogD"}, **kw)
        )
        return row.project, inserted

    assert write(insert_values=_new("first"), update_values={"project": "x"}) == ("first", True)
    assert write(insert_values=_new("y"), update_values={"project": "second"}) == (
        "second",
        False,
    )
    seen = []
    assert write(insert_values=_new("z"), update_values=lambda row: seen.append(row) or {}) == (
        "second",
        False,
    )
    assert [row.project for row in seen] == ["second"]
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(workflows)).scalar() == 1


def test_a_concurrent_insert_of_the_same_key_is_re_read_not_doubled(ledger):
    """Another writer inserts the key between this transaction's select and its insert:
    the unique constraint refuses the second insert, and the re-run finds the row."""
    attempts = []

    def racing_values() -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:  # the other writer wins the race, once
            with ledger.engine.begin() as other:
                other.execute(sa.insert(workflows).values(name="LogD", **_new("other")))
        return _new("mine")

    row, inserted = ledger._tx(
        "racing",
        lambda conn: upsert(conn, workflows, {"name": "LogD"}, insert_values=racing_values),
    )
    assert (row.project, inserted) == ("other", False)
    assert len(attempts) == 1  # the re-run selected the row: no second insert was tried
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(workflows)).scalar() == 1


@pytest.mark.parametrize(
    "jobs, field, reason",
    [
        ("a string", "jobs", "must be a list, got str"),
        ([["not", "a", "mapping"]], "jobs[0]", "must be a mapping, got list"),
        ([{"pipeline": "p", "job_id": "j", "state": "s", "x": 1}], "jobs[0]", "unknown fields"),
        ([{"job_id": "j", "state": "s"}], "jobs[0].pipeline", "is required"),
        (
            [{"pipeline": "p", "job_id": "j", "state": "s", "data_total": True}],
            "jobs[0].data_total",
            "got True",
        ),
        (
            [{"pipeline": "p", "job_id": "j", "state": "s", "started": "soon"}],
            "jobs[0].started",
            "not an ISO 8601 time",
        ),
    ],
)
def test_typed_inputs_name_the_record_and_the_field(jobs, field, reason):
    with pytest.raises(BookkeepingInputError) as info:
        parse_list("jobs", jobs, JobInput)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert reason in info.value.reason
