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

    def __init__(
        self,
        message: str,
        *,
        failed_jobs: list[dict] | None = None,
        jobs: list[dict] | None = None,
    ):
        super().__init__(message)
        self.failed_jobs = failed_jobs or []
        #: every job of the commit set (failed ones with ``log_tail``): the failure
        #: callback records them, so a failed run has its job rows too
        self.jobs = jobs if jobs is not None else self.failed_jobs


class PachydermJobsInFlight(PachydermTimeout, AirflowFailException):
    """Pipelines to update still had unfinished jobs at the wait's limit; nothing was updated.

    Not retried: a retry would wait the whole limit again, so the configured
    limit would silently become (retries + 1) times longer. Run again later,
    with a longer limit, or with ``in_flight="force"``.
    """

    def __init__(self, message: str, *, jobs: list[dict] | None = None):
        super().__init__(message)
        #: the unfinished jobs (:func:`~cpsign_airflow.hooks.pachyderm.job_to_dict` dicts)
        self.jobs = jobs or []


class PachydermPipelineUnhealthy(PachydermError, AirflowFailException):
    """A pipeline of a commit set stayed CRASHING or FAILURE past the grace period, so the
    set cannot finish (not retried: waiting again would wait for the same broken pipeline).

    ``pipelines`` holds one dict per such pipeline: ``pipeline``, ``project``, ``state``,
    ``reason``, ``unhealthy_seconds``, ``log_tail`` and ``job_id`` (its job in the set).
    ``jobs`` is every job of the set as it stood: the failure callback records them.
    """

    def __init__(
        self, message: str, *, pipelines: list[dict] | None = None, jobs: list[dict] | None = None
    ):
        super().__init__(message)
        self.pipelines = pipelines or []
        self.jobs = jobs or []
