"""Errors raised by the bookkeeping store.

They derive from ``AirflowException`` so a failing task shows them plainly, and
none of their messages ever carries a password: targets are described by
connection id, host and database only.
"""

from __future__ import annotations

from airflow.exceptions import AirflowException


class BookkeepingError(AirflowException):
    """Base class for bookkeeping errors."""


class BookkeepingInputError(BookkeepingError, ValueError):
    """A caller passed a bad value; raised before anything is written."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class BookkeepingConfigError(BookkeepingError):
    """The bookkeeping connection is missing or of an unsupported type."""


class BookkeepingUnavailable(BookkeepingError):
    """The database could not be reached, even after retrying."""


class SchemaNotReady(BookkeepingError):
    """The database lacks the bookkeeping schema, or holds another version of it."""


class SchemaMigrationError(BookkeepingError):
    """Creating or upgrading the schema failed."""


class RunNotFound(BookkeepingError, LookupError):
    """No training run has the given id."""


class ArtifactNotFound(BookkeepingError, LookupError):
    """No model artifact of a run matches the given name (and location)."""


class RunStateConflict(BookkeepingError):
    """The write contradicts what is already recorded (e.g. finishing a failed run as succeeded).

    Raised instead of overwriting, so a record is never silently lost.
    """
