"""Typed inputs of the ledger's writes, validated by pydantic before anything is written.

Jobs, artifacts, deployments and a publication arrive as mappings (from XCom, an
operator or a caller). Each becomes a frozen pydantic model: unknown fields, types
and counts are pydantic's checks; column sizes, UTF-8, Pachyderm locations, digests,
ISO times and canonical metrics are the checks of :mod:`records
<cpsign_airflow.bookkeeping.records>` (the operators use them too, at DAG parse
time), attached to the fields as validators. The first problem becomes one
:class:`~cpsign_airflow.bookkeeping.errors.BookkeepingInputError` naming the record
and the field, e.g. ``jobs[1].data_total: Input should be greater than or equal to
0, got -1``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from cpsign_airflow.bookkeeping import records as r
from cpsign_airflow.bookkeeping.errors import BookkeepingInputError

M = TypeVar("M", bound="Input")


def _checked(check: Callable[..., Any], **kwargs: Any) -> BeforeValidator:
    """A field validator from a check of :mod:`records`; its error (a ValueError) names
    no field: :func:`parse` names it from pydantic's location of the error."""
    return BeforeValidator(lambda value: check("", value, **kwargs))


def _lines(value: Any) -> Any:
    """A log tail given as a list of lines is stored as one text; None or empty as NULL."""
    if isinstance(value, (list, tuple)):
        return "\n".join(str(line) for line in value) or None
    return value


Pipeline = Annotated[str, _checked(r.check_str, max_len=r.PIPELINE_MAX)]
Id = Annotated[str, _checked(r.check_str, max_len=r.ID_MAX)]
Text = Annotated[str | None, _checked(r.check_text)]
LogTail = Annotated[str | None, BeforeValidator(lambda v: r.check_text("", _lines(v)))]
Count = Annotated[int, Field(strict=True, ge=0)] | None
Time = Annotated[datetime | None, _checked(r.check_time)]
Sha256 = Annotated[str | None, _checked(r.check_sha256)]
Version = Annotated[str | None, _checked(r.check_str, max_len=64, optional=True)]
PublicationStatus = Literal[r.PUBLICATION_STATUSES]  # type: ignore[valid-type]
PublicationTarget = Literal[r.PUBLICATION_TARGETS]  # type: ignore[valid-type]
Action = Literal[r.DEPLOYMENT_ACTIONS]  # type: ignore[valid-type]


class Input(BaseModel):
    """A record to write: a mapping with only the model's fields (None: not given)."""

    # validate_default: a field left out is checked as None, so a required one says so
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _a_mapping_of_known_fields(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError(f"must be a mapping, got {type(data).__name__}")
        unknown = set(data) - set(cls.model_fields)
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown, key=str)}")
        return dict(data)

    def columns(self) -> dict[str, Any]:
        """The table's columns and their values (None: keep what is recorded)."""
        return self.model_dump()


class JobInput(Input):
    """A Pachyderm job of a run; keyed by (run, pipeline, job_id)."""

    pipeline: Pipeline = None  # type: ignore[assignment]
    job_id: Id = None  # type: ignore[assignment]
    state: Annotated[str, _checked(r.check_str, max_len=r.STATE_MAX)] = None  # type: ignore[assignment]
    reason: Text = None
    log_tail: LogTail = None
    data_processed: Count = None
    data_skipped: Count = None
    data_failed: Count = None
    data_total: Count = None
    started: Time = None
    finished: Time = None

    def columns(self) -> dict[str, Any]:
        from cpsign_airflow.bookkeeping.store import to_db

        out = self.model_dump(exclude={"started", "finished"})
        out["started_at"] = to_db(self.started)
        out["finished_at"] = to_db(self.finished)
        return out


def _publication_columns(pub: Any) -> dict[str, Any]:
    """Publication columns of a :class:`PublicationInput` or an :class:`ArtifactInput`:
    a model published without a time was published now."""
    from cpsign_airflow.bookkeeping.store import to_db

    published_at = pub.published_at
    if pub.publication_status == "published" and published_at is None:
        published_at = r.utcnow()
    return {
        "publication_status": pub.publication_status,
        "publication_target": pub.publication_target,
        "publication_url": pub.publication_url,
        "publication_error": pub.publication_error,
        "published_at": to_db(published_at),
        "published_version": pub.published_version,
    }


class PublicationInput(Input):
    """Where a run's model was published, or why not."""

    publication_status: PublicationStatus | None = None
    publication_target: PublicationTarget | None = None
    publication_url: Text = None
    publication_error: Text = None
    published_at: Time = None
    published_version: Version = None

    def columns(self) -> dict[str, Any]:
        return _publication_columns(self)


class _ArtifactIdentity(Input):
    """The key fields of an :class:`ArtifactInput`, checked before the others."""

    model_name: Annotated[str, _checked(r.check_str, max_len=r.MODEL_NAME_MAX)] = None  # type: ignore[assignment]
    location: Annotated[str, _checked(r.check_location)] = None  # type: ignore[assignment]


class ArtifactInput(PublicationInput, _ArtifactIdentity):
    """A model of a run; keyed by (run, model_name, location), stored as ``artifact_key``.

    Fields in the order they are checked (the first problem is reported): the key, then
    the publication's (:class:`PublicationInput`), then these."""

    size_bytes: Count = None
    sha256: Sha256 = None
    content_sha256: Sha256 = None
    #: ``metrics.json`` as a mapping or JSON text, kept as canonical JSON text
    metrics: Annotated[str | None, BeforeValidator(r.canonical_metrics)] = None

    @property
    def artifact_key(self) -> str:
        return artifact_key(self.model_name, self.location)

    def columns(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "location": self.location,
            "artifact_key": self.artifact_key,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "content_sha256": self.content_sha256,
            "metrics": self.metrics,
            **_publication_columns(self),
        }


class DeploymentInput(Input):
    """What a setup task did to one pipeline; keyed by (task, pipeline)."""

    pipeline: Pipeline = None  # type: ignore[assignment]
    spec_hash: Id = None  # type: ignore[assignment]
    action: Action = None  # type: ignore[assignment]


#: Fields of a job record: what a job summary is trimmed to before :func:`parse`.
JOB_FIELDS = frozenset(JobInput.model_fields)


def artifact_key(model_name: str, location: str) -> str:
    """sha256(model_name NUL location): the two together are too long to index on MySQL."""
    return hashlib.sha256(f"{model_name}\x00{location}".encode()).hexdigest()


def parse(field: str, data: Any, model: type[M]) -> M:
    """``data`` as a ``model``, or a BookkeepingInputError naming ``field`` and the bad part."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _input_error(field, exc) from None


def parse_list(field: str, items: Any, model: type[M]) -> list[M]:
    """Each of ``items`` (a list, or any iterable but a string or a mapping) as a ``model``;
    ``field[i]`` names the bad one."""
    return [parse(f"{field}[{i}]", item, model) for i, item in enumerate(check_list(field, items))]


def check_list(field: str, items: Any) -> list[Any]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise BookkeepingInputError(field, f"must be a list, got {type(items).__name__}")
    return list(items)


def _input_error(record: str, exc: ValidationError) -> BookkeepingInputError:
    """The first problem pydantic found: ``record.field: what is wrong``."""
    err = exc.errors(include_url=False)[0]
    field = ".".join([record, *(str(part) for part in err["loc"])])
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, BookkeepingInputError):  # a check of records.py
        return BookkeepingInputError(field, cause.reason)
    if isinstance(cause, Exception):  # raised by a model validator above
        return BookkeepingInputError(field, str(cause))
    given = repr(err["input"])
    given = given if len(given) <= 100 else f"{given[:97]}..."
    return BookkeepingInputError(field, f"{err['msg']}, got {given}")
