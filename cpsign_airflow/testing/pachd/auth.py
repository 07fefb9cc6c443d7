"""Auth: the root token and pachd's rules for it (:class:`AuthConfig`: checking the
``authn-token`` metadata of every call, WhoAmI), and the auth_v2.API servicer."""

from __future__ import annotations

import hmac
import threading

import grpc
from pachyderm_sdk.api import auth

from .errors import PachdError

TOKEN_METADATA_KEY = "authn-token"
ROOT_USER = "pach:root"
NO_TOKEN = "no authentication token (try logging in)"
BAD_TOKEN = "provided auth token is corrupted or has expired (try logging in again)"
NOT_ACTIVATED = "the auth service is not activated"

# Methods real pachd serves without a token.
UNAUTHENTICATED_METHODS = frozenset({"/versionpb_v2.API/GetVersion"})


class AuthConfig:
    """The token required by the server (``None``: auth not activated)."""

    def __init__(self, token: str | None = None) -> None:
        self._lock = threading.Lock()
        self._token = token

    @property
    def token(self) -> str | None:
        with self._lock:
            return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        with self._lock:
            self._token = value

    def check(self, full_method: str, metadata: tuple | None) -> None:
        required = self.token
        if required is None or full_method in UNAUTHENTICATED_METHODS:
            return
        supplied = None
        for key, value in metadata or ():
            if key == TOKEN_METADATA_KEY:
                supplied = value
        if not supplied:
            raise PachdError(grpc.StatusCode.UNAUTHENTICATED, NO_TOKEN)
        if not hmac.compare_digest(str(supplied), required):
            raise PachdError(grpc.StatusCode.UNAUTHENTICATED, BAD_TOKEN)

    def who_am_i(self) -> str:
        """The user the token stands for; with auth off, pachd has no auth service."""
        if self.token is None:
            raise PachdError(grpc.StatusCode.UNIMPLEMENTED, NOT_ACTIVATED)
        return ROOT_USER


class AuthService:
    service = "auth_v2.API"

    def __init__(self, config: AuthConfig) -> None:
        self.config = config

    def methods(self) -> dict:
        return {"WhoAmI": ("unary_unary", auth.WhoAmIRequest, self.who_am_i)}

    async def who_am_i(self, request: auth.WhoAmIRequest, context: object) -> auth.WhoAmIResponse:
        return auth.WhoAmIResponse(username=self.config.who_am_i())
