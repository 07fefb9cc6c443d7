"""Validation metrics and quality verdicts on model artifacts (revision 0004), MySQL and SQLite."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import sqlalchemy as sa

from cpsign_airflow.bookkeeping import schema
from cpsign_airflow.bookkeeping.engine import engine_from_url
from cpsign_airflow.bookkeeping.errors import (
    ArtifactNotFound,
    BookkeepingInputError,
    RunNotFound,
    SchemaNotReady,
)
from cpsign_airflow.bookkeeping.ledger import TrainingLedger
from cpsign_airflow.bookkeeping.tables import (
    metadata,
    model_artifacts,
    training_runs,
    workflows,
)

from .test_schema import HEAD, _diff

CONFIG = {"workflow_name": "FreeSolv", "cpsign": {"ptype": 2}}
MODEL = "FreeSolv-aggregate@0123456789abcdef0123456789abcdef:/model/FreeSolv_acp.jar"
METRICS = {
    "model_name": "FreeSolv_acp",
    "ptype": 2,
    "test_molecules": 128,
    "predicted": 106,
    "confidences": [0.8, 0.9],
    "error_rate": {"0.8": 0.142, "0.9": 0.047},
    "median_interval_width": {"0.8": 3.04, "0.9": 5.76},
    "efficiency": {"0.8": 3.04, "0.9": 5.76},
    "note": "Säure 😀",
}


def _stored(ledger: TrainingLedger, column: str) -> list:
    with ledger.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(model_artifacts.c[column]).order_by(model_artifacts.c.id)
            ).scalars()
        )


def _location(i: int) -> str:
    return f"FreeSolv-aggregate@{i:032x}:/model/FreeSolv_acp.jar"


def test_metrics_round_trip_as_canonical_json(ledger):
    run_id = ledger.record_pending_run("FreeSolv", CONFIG)
    [art] = ledger.record_artifacts(
        run_id, [{"model_name": "FreeSolv_acp", "location": MODEL, "metrics": METRICS}]
    )
    assert art.metrics == METRICS
    assert (art.quality, art.quality_reason) == (None, None)
    assert ledger.list_artifacts(run_id)[0].metrics == METRICS
    assert art.as_dict()["metrics"] == METRICS  # XCom form carries the parsed metrics
    [text] = _stored(ledger, "metrics")
    assert text == json.dumps(METRICS, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def test_artifact_without_metrics_stores_null(ledger):
    run_id = ledger.record_pending_run("FreeSolv", CONFIG)
    [art] = ledger.record_artifacts(run_id, [{"model_name": "FreeSolv_acp", "location": MODEL}])
    assert art.metrics is None
    assert _stored(ledger, "metrics") == [None]


def test_retried_record_keeps_one_row_and_the_metrics(ledger):
    run_id = ledger.record_pending_run("FreeSolv", CONFIG)
    art = {"model_name": "FreeSolv_acp", "location": MODEL, "sha256": "a" * 64}
    first = ledger.record_artifacts(run_id, [{**art, "metrics": METRICS}])
    # The retry reads the same metrics.json: as JSON text in another key order.
    text = json.dumps(dict(reversed(list(METRICS.items()))), indent=2)
    again = ledger.record_artifacts(run_id, [{**art, "metrics": text}])
    without = ledger.record_artifacts(run_id, [art])  # metrics left out: kept

    assert first[0].id == again[0].id == without[0].id
    assert again[0].metrics == without[0].metrics == METRICS
    assert len(_stored(ledger, "id")) == 1
    assert len(set(_stored(ledger, "metrics"))) == 1


@pytest.mark.parametrize(
    "metrics, match",
    [
        ([0.1, 0.2], "must be a mapping"),
        ("not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"error_rate": {"0.8": float("nan")}}, "cannot be serialised"),
        ({"x": object()}, "cannot be serialised"),
    ],
)
def test_malformed_metrics_are_refused_before_any_write(ledger, metrics, match):
    run_id = ledger.record_pending_run("FreeSolv", CONFIG)
    with pytest.raises(BookkeepingInputError, match=match):
        ledger.record_artifacts(
            run_id, [{"model_name": "FreeSolv_acp", "location": MODEL, "metrics": metrics}]
        )
    assert _stored(ledger, "id") == []


def test_record_quality_sets_and_replaces_the_verdict(ledger):
    run_id = ledger.record_pending_run("FreeSolv", CONFIG)
    ledger.record_artifacts(
        run_id, [{"model_name": "FreeSolv_acp", "location": MODEL, "metrics": METRICS}]
    )
    [art] = ledger.record_quality(run_id, "FreeSolv_acp", "held_back", "error rate 0.3 > 0.25")
    assert (art.quality, art.quality_reason) == ("held_back", "error rate 0.3 > 0.25")
    ledger.record_quality(run_id, "FreeSolv_acp", "held_back", "error rate 0.3 > 0.25")  # retry
    [art] = ledger.record_quality(str(run_id), "FreeSolv_acp", "passed", "valid")
    assert (art.quality, art.quality_reason, art.metrics) == ("passed", "valid", METRICS)
    assert len(_stored(ledger, "id")) == 1

    with pytest.raises(BookkeepingInputError, match="quality"):
        ledger.record_quality(run_id, "FreeSolv_acp", "failed", "no")
    with pytest.raises(ArtifactNotFound, match="other"):
        ledger.record_quality(run_id, "other", "passed")
    with pytest.raises(RunNotFound):
        ledger.record_quality(run_id + 100, "FreeSolv_acp", "passed")


def test_last_published_metrics_is_the_newest_accepted_model(ledger):
    assert ledger.last_published_metrics("FreeSolv") is None

    def run(i: int, metrics, quality=None, published=False, workflow="FreeSolv") -> int:
        run_id = ledger.record_pending_run(workflow, {**CONFIG, "workflow_name": workflow})
        art = {"model_name": "FreeSolv_acp", "location": _location(i), "metrics": metrics}
        if published:
            art.update(publication_status="published", publication_target="prediction_service")
        ledger.record_artifacts(run_id, [art])
        if quality:
            ledger.record_quality(run_id, "FreeSolv_acp", quality, "why")
        return run_id

    ungated = run(1, {"v": 1})
    assert ledger.last_published_metrics("FreeSolv") is None  # neither published nor passed
    passed = run(2, {"v": 2}, quality="passed")
    assert ledger.last_published_metrics("FreeSolv") == {"v": 2}
    run(3, {"v": 3}, quality="held_back")  # never a baseline
    run(4, None, quality="passed")  # no metrics: cannot be a baseline
    run(5, {"v": 5}, workflow="LogD", quality="passed")  # another workflow
    assert ledger.last_published_metrics("FreeSolv") == {"v": 2}
    published = run(6, {"v": 6}, published=True)  # served, even though never gated
    assert ledger.last_published_metrics("FreeSolv") == {"v": 6}
    current = run(7, {"v": 7}, quality="passed")
    assert ledger.last_published_metrics("FreeSolv") == {"v": 7}
    # A run's gate compares with earlier runs only, even when it is retried after recording.
    assert ledger.last_published_metrics("FreeSolv", before_run_id=current) == {"v": 6}
    assert ledger.last_published_metrics("FreeSolv", before_run_id=published) == {"v": 2}
    assert ledger.last_published_metrics("FreeSolv", before_run_id=passed) is None
    assert ledger.last_published_metrics("FreeSolv", before_run_id=ungated) is None
    assert ledger.last_published_metrics("Nobody") is None
    # with several models, each is compared with its own kind
    other = ledger.record_pending_run("FreeSolv", CONFIG)
    ledger.record_artifacts(
        other, [{"model_name": "FreeSolv_vap", "location": _location(9), "metrics": {"v": 9}}]
    )
    ledger.record_quality(other, "FreeSolv_vap", "passed", "why")
    assert ledger.last_published_metrics("FreeSolv") == {"v": 9}
    assert ledger.last_published_metrics("FreeSolv", model_name="FreeSolv_acp") == {"v": 7}
    assert ledger.last_published_metrics("FreeSolv", model_name="FreeSolv_vap") == {"v": 9}


def test_upgrade_from_0003_keeps_rows_and_adds_metrics(bookkeeping_url):
    engine = engine_from_url(bookkeeping_url)
    schema.upgrade(engine, "0003")
    t0 = datetime(2026, 11, 30, 10, 0, 0)
    with engine.begin() as conn:
        conn.execute(
            workflows.insert().values(
                id=1, name="FreeSolv", project="p", config_repo="c", created_at=t0, updated_at=t0
            )
        )
        conn.execute(
            training_runs.insert().values(
                id=1,
                workflow_id=1,
                map_index=-1,
                task_key="k" * 64,
                trigger_kind="manual",
                configuration=json.dumps(CONFIG),
                config_sha256="c" * 64,
                status="succeeded",
                started_at=t0,
                updated_at=t0,
            )
        )
        conn.execute(
            model_artifacts.insert().values(
                id=1,
                run_id=1,
                model_name="FreeSolv_acp",
                location=MODEL,
                artifact_key="a" * 64,
                size_bytes=42,
                sha256="8" * 64,
                recorded_at=t0,
                publication_status="published",
                publication_target="prediction_service",
                publication_url="https://predict/1",
                published_version="v" * 32,
            )
        )
    with pytest.raises(SchemaNotReady, match="revision 0003.*upgrade"):
        TrainingLedger.from_url(bookkeeping_url).list_artifacts(1)

    ledger = TrainingLedger.from_url(bookkeeping_url)
    result = ledger.upgrade_schema()
    assert (result.before, result.after) == ("0003", HEAD)
    [art] = ledger.list_artifacts(1)
    assert (art.size_bytes, art.sha256, art.publication_url) == (42, "8" * 64, "https://predict/1")
    assert (art.published_version, art.publication_status) == ("v" * 32, "published")
    assert (art.metrics, art.quality, art.quality_reason) == (None, None, None)
    # The old published model without metrics is no baseline; old rows take new writes.
    assert ledger.last_published_metrics("FreeSolv") is None
    [art] = ledger.record_quality(1, "FreeSolv_acp", "passed", "no validity metrics")
    assert art.quality == "passed"
    assert _diff(engine, metadata) == []
    ledger.dispose()
    engine.dispose()


def test_0004_cut_off_after_its_first_column_is_completed(bookkeeping_url):
    engine = engine_from_url(bookkeeping_url)
    schema.upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE cpsign_model_artifacts ADD COLUMN metrics TEXT"))
    assert schema.upgrade(engine).after == HEAD
    names = {c["name"] for c in sa.inspect(engine).get_columns("cpsign_model_artifacts")}
    assert {"metrics", "quality", "quality_reason"} <= names
    engine.dispose()


def test_previous_model_is_the_newest_succeeded_run_before_this_one(ledger):
    def run(i: int, status: str, workflow: str = "FreeSolv", name: str = "FreeSolv_acp") -> int:
        run_id = ledger.record_pending_run(workflow, {**CONFIG, "workflow_name": workflow})
        ledger.record_artifacts(
            run_id, [{"model_name": name, "location": _location(i), "sha256": f"{i:064x}"}]
        )
        if status != "pending":
            ledger.mark_committed(run_id, f"{i:032x}")
            ledger.finish_run(run_id, status, error="broke" if status == "failed" else None)
        return run_id

    first = run(1, "succeeded")
    run(2, "failed")  # a failed run's model is never the one to compare with
    run(3, "succeeded", workflow="LogD")  # another workflow
    run(4, "succeeded", name="other_model")  # another model
    current = run(5, "pending")
    previous = ledger.previous_model("FreeSolv", "FreeSolv_acp", before_run_id=current)
    assert (previous.run_id, previous.sha256) == (first, f"{1:064x}")
    assert ledger.previous_model("FreeSolv", "FreeSolv_acp", before_run_id=first) is None
