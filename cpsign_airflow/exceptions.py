"""Errors raised by the provider.

gRPC status codes from pachd become these types so callers can tell a missing
repo from an existing one without parsing messages, and so no message ever
carries the auth token.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException


class PachydermError(AirflowException):
    """Base class for errors talking to pachd."""

    def __init__(self, message: str, *, code: str | None = None, details: str | None = None):
        super().__init__(message)
        self.code = code
        self.details = details


class PachydermNotFound(PachydermError):
    """A repo, branch, commit, file, project or pipeline does not exist."""


class PachydermAlreadyExists(PachydermError):
    """The resource exists and the call asked to create it anew."""


class PachydermInvalidArgument(PachydermError, ValueError):
    """pachd refused a request as malformed (bad name, bad spec...)."""


class PachydermAuthError(PachydermError):
    """The auth token is missing, wrong, expired or lacks permission."""


class PachydermUnavailable(PachydermError):
    """pachd could not be reached, even after retrying."""


class PachydermTimeout(PachydermError):
    """A wait on pachd did not finish in the time allowed."""


class PachydermSpecError(PachydermInvalidArgument, AirflowFailException):
    """A pipeline spec failed validation before anything was sent (not retried: it would fail again)."""


class PachydermJobFailed(PachydermError, AirflowFailException):
    """One or more jobs of a commit set did not succeed (not retried: the jobs have ended)."""

    def __init__(self, message: str, *, failed_jobs: list[dict] | None = None):
        super().__init__(message)
        self.failed_jobs = failed_jobs or []
