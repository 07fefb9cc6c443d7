"""Vocabulary, record types and input checks of the bookkeeping store.

Nothing here imports SQLAlchemy or Airflow's heavy parts: operators validate
their arguments with these helpers at DAG parse time, before any side effect.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from cpsign_airflow.bookkeeping.errors import BookkeepingInputError

DEFAULT_CONN_ID = "cpsign_bookkeeping"
DEFAULT_PROJECT = "default"
DEFAULT_CONFIG_REPO = "config"

TRIGGER_KINDS = ("manual", "scheduled", "asset")
#: ``rejected``: the configuration failed validation; nothing was committed.
RUN_STATUSES = ("pending", "committed", "running", "succeeded", "failed", "rejected")
TERMINAL_STATUSES = ("succeeded", "failed", "rejected")
DEPLOYMENT_ACTIONS = ("created", "updated", "unchanged")
PUBLICATION_STATUSES = ("unpublished", "pending", "published", "failed")
PUBLICATION_TARGETS = ("model_store", "prediction_service")
#: Verdicts of the quality gate on a model's validation metrics.
#: ``unchanged``: the same model (sha256) as the workflow's previous run; pachd
#: skipped every datum, so nothing was retrained or published again.
QUALITY_VERDICTS = ("passed", "held_back", "unchanged")

#: Largest text (configuration, error, reason) accepted, in UTF-8 bytes. Well under
#: MariaDB's default ``max_allowed_packet`` (16 MiB), so a write never fails half way.
MAX_TEXT_BYTES = 8 * 1024 * 1024

# Column sizes; checked here because MySQL in non-strict mode would truncate silently.
NAME_MAX = 128
PIPELINE_MAX = 255
ID_MAX = 64
AIRFLOW_ID_MAX = 250
STATE_MAX = 32
LOCATION_MAX = 1024
MODEL_NAME_MAX = 255

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+\Z")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
_LOCATION_RE = re.compile(r"^[^@\s]+@[^:\s]+:/\S*\Z")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------- checks


def check_str(
    field: str,
    value: Any,
    *,
    max_len: int,
    optional: bool = False,
    pattern: re.Pattern | None = None,
) -> str | None:
    """Return ``value`` if it is a non-empty string within ``max_len`` characters."""
    if value is None:
        if optional:
            return None
        raise BookkeepingInputError(field, "is required")
    if not isinstance(value, str):
        raise BookkeepingInputError(field, f"must be a string, got {type(value).__name__}")
    if not value:
        if optional:
            return None
        raise BookkeepingInputError(field, "must not be empty")
    if len(value) > max_len:
        raise BookkeepingInputError(field, f"is {len(value)} characters; at most {max_len} allowed")
    if pattern is not None and not pattern.match(value):
        raise BookkeepingInputError(field, f"{value!r} does not match {pattern.pattern}")
    _check_utf8(field, value)
    return value


def check_text(field: str, value: Any, *, optional: bool = True) -> str | None:
    """Return ``value`` if it is a string that fits :data:`MAX_TEXT_BYTES` when encoded."""
    if value is None:
        if optional:
            return None
        raise BookkeepingInputError(field, "is required")
    if not isinstance(value, str):
        raise BookkeepingInputError(field, f"must be a string, got {type(value).__name__}")
    size = len(_check_utf8(field, value))
    if size > MAX_TEXT_BYTES:
        raise BookkeepingInputError(field, f"is {size} bytes; at most {MAX_TEXT_BYTES} allowed")
    return value


def _check_utf8(field: str, value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BookkeepingInputError(field, f"is not valid Unicode text ({exc.reason})") from None


def check_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise BookkeepingInputError(field, f"{value!r} is not one of {', '.join(choices)}")
    return value


def check_workflow(value: Any, field: str = "workflow") -> str:
    """Workflow names prefix Pachyderm repos and pipelines, so they follow Pachyderm's rules."""
    return check_str(field, value, max_len=NAME_MAX, pattern=_NAME_RE)  # type: ignore[return-value]


def check_run_id(value: Any, field: str = "run_id") -> int:
    """Accept an int, or the decimal string a rendered template or XCom gives."""
    if isinstance(value, bool):
        raise BookkeepingInputError(field, "must be an integer run id, got a bool")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 1:
        raise BookkeepingInputError(field, f"must be a positive integer run id, got {value!r}")
    return value


def check_count(field: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BookkeepingInputError(field, f"must be a non-negative integer, got {value!r}")
    return value


def check_sha256(field: str, value: Any, *, optional: bool = True) -> str | None:
    value = check_str(field, value, max_len=64, optional=optional)
    if value is not None:
        value = value.lower()
        if not _SHA256_RE.match(value):
            raise BookkeepingInputError(field, f"{value!r} is not a hex sha256 digest")
    return value


def check_location(field: str, value: Any) -> str:
    """Model output locations are Pachyderm file references ``repo@commit:/path``."""
    value = check_str(field, value, max_len=LOCATION_MAX)
    if not _LOCATION_RE.match(value):  # type: ignore[arg-type]
        raise BookkeepingInputError(field, f"{value!r} is not of the form repo@commit:/path")
    return value  # type: ignore[return-value]


def check_time(field: str, value: Any) -> datetime | None:
    """Accept an aware datetime, an ISO 8601 string (XCom) or None; naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BookkeepingInputError(field, f"{value!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise BookkeepingInputError(field, f"must be a datetime or ISO 8601 string, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def canonical_configuration(configuration: Any, field: str = "configuration") -> tuple[str, str]:
    """Return (JSON text, sha256 hex) of a run's configuration.

    A string is kept byte for byte (pass the exact text committed as
    ``configuration.json`` and the digest matches the file); a mapping is
    serialised canonically (sorted keys, no whitespace, UTF-8).
    """
    parsed, text = _json_object(configuration, field)
    if text is None:
        text = _dump(parsed, field)
    check_text(field, text, optional=False)
    return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def _json_object(value: Any, field: str) -> tuple[Mapping[str, Any], str | None]:
    """(the object, the exact text when ``value`` was JSON text): bytes, text or a mapping."""
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise BookkeepingInputError(field, "bytes are not UTF-8") from None
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise BookkeepingInputError(field, f"is not valid JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise BookkeepingInputError(field, "must be a JSON object")
        return parsed, value
    if isinstance(value, Mapping):
        return value, None
    raise BookkeepingInputError(
        field, f"must be a mapping or a JSON string, got {type(value).__name__}"
    )


def _dump(value: Mapping[str, Any], field: str, allow_nan: bool = True) -> str:
    """Canonical JSON: sorted keys, no whitespace, UTF-8."""
    try:
        return json.dumps(
            value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan
        )
    except (TypeError, ValueError) as exc:
        raise BookkeepingInputError(field, f"cannot be serialised as JSON ({exc})") from None


def canonical_metrics(metrics: Any, field: str = "metrics") -> str | None:
    """JSON text of a model's validation metrics (``metrics.json``), or None.

    A mapping is serialised canonically (sorted keys, no whitespace, UTF-8); a
    string must be a JSON object and is re-serialised the same way, so equal
    metrics are equal text. NaN and infinities are refused: they are not JSON.
    """
    if metrics is None:
        return None
    parsed, _ = _json_object(metrics, field)
    text = _dump(parsed, field, allow_nan=False)
    check_text(field, text, optional=False)
    return text


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class TaskKey:
    """Which Airflow task instance wrote a record: the idempotency key of writes.

    A retried task instance has the same key, so its writes find the rows the
    first try left instead of adding new ones.
    """

    dag_id: str | None
    run_id: str | None
    task_id: str | None
    map_index: int = -1

    def __post_init__(self) -> None:
        for name in ("dag_id", "run_id", "task_id"):
            check_str(name, getattr(self, name), max_len=AIRFLOW_ID_MAX, optional=True)
        if isinstance(self.map_index, bool) or not isinstance(self.map_index, int):
            raise BookkeepingInputError("map_index", f"must be an integer, got {self.map_index!r}")

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TaskKey:
        """Key of the running task instance, from an Airflow task context."""
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=-1 if map_index is None else int(map_index),
        )

    @classmethod
    def one_off(cls) -> TaskKey:
        """A key that never repeats, for writes made outside Airflow (CLI, notebooks)."""
        return cls(dag_id=None, run_id=None, task_id=f"adhoc-{uuid.uuid4().hex}")

    def digest(self) -> str:
        """Fixed-size key: Airflow ids are up to 250 characters each, too long to index together."""
        parts = [self.dag_id or "", self.run_id or "", self.task_id or "", str(self.map_index)]
        return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def trigger_kind_from_context(context: Mapping[str, Any]) -> str:
    """Map the DAG run's type to ``manual``, ``scheduled`` or ``asset``."""
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    run_type = getattr(run_type, "value", run_type)
    if run_type in ("scheduled", "backfill"):
        return "scheduled"
    if run_type in ("asset_triggered", "asset_materialization"):
        return "asset"
    return "manual"


# --------------------------------------------------------------------------- records


class _Record:
    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (times as ISO 8601), small enough for XCom."""
        out = asdict(self)  # type: ignore[call-overload]
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        return out


@dataclass(frozen=True)
class WorkflowRecord(_Record):
    id: int
    name: str
    project: str
    config_repo: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RunRecord(_Record):
    id: int
    workflow: str
    status: str
    trigger_kind: str
    configuration_json: str = field(repr=False)
    config_sha256: str
    dag_id: str | None
    airflow_run_id: str | None
    task_id: str | None
    commit_id: str | None
    commit_set_id: str | None
    error: str | None
    started_at: datetime
    committed_at: datetime | None
    finished_at: datetime | None

    @property
    def configuration(self) -> dict[str, Any]:
        return json.loads(self.configuration_json)


@dataclass(frozen=True)
class JobRecord(_Record):
    id: int
    run_id: int
    pipeline: str
    job_id: str
    state: str
    reason: str | None
    log_tail: str | None
    data_processed: int | None
    data_skipped: int | None
    data_failed: int | None
    data_total: int | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class ArtifactRecord(_Record):
    id: int
    run_id: int
    model_name: str
    location: str
    size_bytes: int | None
    sha256: str | None
    publication_status: str
    publication_target: str | None
    publication_url: str | None
    publication_error: str | None
    published_at: datetime | None
    published_version: str | None
    recorded_at: datetime
    #: Parsed ``metrics.json`` of the validate pipeline (None: not recorded).
    metrics: dict[str, Any] | None = None
    #: Quality gate verdict, ``passed`` or ``held_back`` (None: not gated), and why.
    quality: str | None = None
    quality_reason: str | None = None
    #: sha256 of the jar less its build metadata: two builds of the same model share it.
    content_sha256: str | None = None
    #: The earlier run whose verdict this model carries (same identity), or None.
    verdict_run_id: int | None = None


@dataclass(frozen=True)
class DeploymentRecord(_Record):
    id: int
    workflow: str
    pipeline: str
    spec_hash: str
    action: str
    dag_id: str | None
    airflow_run_id: str | None
    recorded_at: datetime
