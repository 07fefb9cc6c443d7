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


def is_retryable(error: BaseException) -> bool:
    """UNAVAILABLE, or pachyderm-sdk's plain ConnectionError for an unreachable pachd."""
    if isinstance(error, PachydermUnavailable):
        return True
    if isinstance(error, ConnectionError):
        return True
    code, _ = status_of(error)
    return code in RETRYABLE_CODES


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
