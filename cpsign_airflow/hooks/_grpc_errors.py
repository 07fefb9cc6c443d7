"""Turn gRPC failures from pachd into the provider's exception types.

Shared by the synchronous hook and its asyncio session so both name the
resource involved and neither ever echoes the auth token.
"""

from __future__ import annotations

import re
from typing import Any

from cpsign_airflow.exceptions import (
    PachydermAlreadyExists,
    PachydermAuthError,
    PachydermError,
    PachydermInvalidArgument,
    PachydermNotFound,
    PachydermTimeout,
    PachydermUnavailable,
)

# pachd answers some conditions with UNKNOWN and a well-known message; its own
# Go client matches them by regex (src/server/pfs/pfs.go), so do we.
_NOT_FOUND_RE = re.compile(r"\bnot found\b|no commits found for commitset")
_EXISTS_RE = re.compile(r"\balready exists\b")

RETRYABLE_CODES = frozenset({"UNAVAILABLE"})

# Under load pachd answers UNKNOWN with PostgreSQL's text when its transaction lost a
# race: a serialization failure (SQLSTATE 40001, "could not serialize access due to ..."),
# a deadlock (40P01), or a later statement of a transaction already aborted (25P02,
# "current transaction is aborted, commands ignored until end of transaction block").
# The transaction was rolled back, so sending the call again is safe and usually works.
_TRANSIENT_DB_RE = re.compile(
    r"could not serialize access|current transaction is aborted|deadlock detected"
    r"|SQLSTATE 40001|SQLSTATE 40P01|SQLSTATE 25P02"
)


def status_of(error: BaseException) -> tuple[str | None, str]:
    """Return (status code name, details) of a grpc error, or (None, text)."""
    code = getattr(error, "code", None)
    details = getattr(error, "details", None)
    if callable(code) and callable(details):
        try:
            code_value = code()
            return (getattr(code_value, "name", str(code_value)), details() or "")
        except Exception:  # a grpc.Call that never completed
            pass
    return None, str(error)


def retry_reason(error: BaseException) -> str | None:
    """Why ``error`` is worth sending again, for the log, or None when it is not.

    UNAVAILABLE (or pachyderm-sdk's plain ConnectionError for an unreachable pachd):
    ``"unavailable"``; UNKNOWN carrying one of PostgreSQL's transient transaction
    failures (see _TRANSIENT_DB_RE): ``"answered a transient database error (...)"``.
    Takes grpc errors and the provider's translated ones alike.
    """
    if isinstance(error, (PachydermUnavailable, ConnectionError)):
        return "unavailable"
    if isinstance(error, PachydermError):
        code, details = error.code, error.details or str(error)
    else:
        code, details = status_of(error)
    if code in RETRYABLE_CODES:
        return "unavailable"
    if code == "UNKNOWN" and _TRANSIENT_DB_RE.search(details):
        text = details if len(details) <= 200 else details[:200] + "..."
        return f"answered a transient database error ({text})"
    return None


def is_retryable(error: BaseException) -> bool:
    """Whether :func:`retry_reason` gives a reason to send the call again."""
    return retry_reason(error) is not None


def translate(
    error: BaseException, action: str, *, address: str, secrets: tuple[str, ...] = ()
) -> PachydermError:
    """Build the provider exception for ``error`` raised while doing ``action``.

    ``action`` names the operation and resource ("create repo 'default/config'"),
    so the message says what failed even when pachd's own text does not.
    """
    if isinstance(error, PachydermError):
        return error
    code, details = status_of(error)
    details = scrub(details, secrets)
    if isinstance(error, ConnectionError) and code is None:
        code = "UNAVAILABLE"
    message = (
        f"Pachyderm could not {action}: {details}" if details else f"Pachyderm could not {action}"
    )
    kwargs: dict[str, Any] = {"code": code, "details": details}
    if code == "NOT_FOUND" or (code == "UNKNOWN" and _NOT_FOUND_RE.search(details)):
        return PachydermNotFound(message, **kwargs)
    if code == "ALREADY_EXISTS" or (code == "UNKNOWN" and _EXISTS_RE.search(details)):
        return PachydermAlreadyExists(message, **kwargs)
    if (
        code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        or "auth service is not activated" in details
    ):
        hint = (
            "the auth token is missing or wrong; set it as the password of the Pachyderm connection"
            if code != "PERMISSION_DENIED"
            else "the auth token lacks permission for this"
        )
        return PachydermAuthError(f"{message} ({hint})", **kwargs)
    if code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"):
        return PachydermInvalidArgument(message, **kwargs)
    if code == "DEADLINE_EXCEEDED":
        return PachydermTimeout(message, **kwargs)
    if code == "UNAVAILABLE":
        return PachydermUnavailable(
            f"Pachyderm at {address} is unavailable; could not {action}: {details}", **kwargs
        )
    return PachydermError(message, **kwargs)


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Remove secret values from text that came back from the server."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
