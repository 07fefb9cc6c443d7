"""Where pachyderm-sdk 2.12 offers no way: the one place the provider reaches past it.

* A ``Client`` has no ``close()``, and its generated stubs take no per-call timeout.
  :func:`close` and :func:`timed_rpc` use the client's private channel, which carries
  the SDK's interceptor (the auth token on every call, an unreachable pachd as
  ``ConnectionError``). Nothing else in the provider touches ``Client._channel``.
* The SDK has no asyncio client. :func:`async_channel` opens a grpc.aio channel with
  the SDK's own channel options, and :func:`token_metadata` is what its interceptor
  adds to each call; methods are then called by name (``/pfs_v2.API/...``).
* Its interceptor re-raises a unary call's error from a future's done-callback as
  well as to the caller, and grpc logs the callback's copy at ERROR level;
  :func:`quiet_callback_noise` drops those records.

grpc and the SDK are imported inside the functions: importing the hook module must
not load them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pachyderm_sdk import Client


def close(client: Client) -> None:
    """Close the client's channel (pachyderm-sdk has no ``Client.close()``)."""
    client._channel.close()


def timed_rpc(
    client: Client, method: str, response: Any, *, stream: bool = False
) -> Callable[..., Any]:
    """``method`` (``"/pps_v2.API/InspectJob"``) on the client's channel, called as
    ``rpc(request, timeout=seconds)``: the generated stubs take no timeout.

    ``request`` is a pachyderm-sdk message; replies are ``response`` messages (an
    iterator of them when ``stream``), or what ``response`` makes of a reply's bytes when
    it is a function (a fast decoder of :mod:`cpsign_airflow.hooks._wire`).
    """
    make = client._channel.unary_stream if stream else client._channel.unary_unary
    decode = getattr(response, "FromString", response)
    return make(method, request_serializer=bytes, response_deserializer=decode)


def async_channel(host: str, port: int, tls: bool, root_certs: bytes | None) -> Any:
    """A grpc.aio channel to pachd, with pachyderm-sdk's channel options."""
    import grpc
    from pachyderm_sdk.constants import GRPC_CHANNEL_OPTIONS

    target = f"{host}:{port}"
    if tls:
        credentials = grpc.ssl_channel_credentials(root_certificates=root_certs)
        return grpc.aio.secure_channel(target, credentials, options=GRPC_CHANNEL_OPTIONS)
    return grpc.aio.insecure_channel(target, options=GRPC_CHANNEL_OPTIONS)


def token_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """Per-call metadata carrying the auth token, as the SDK's interceptor sends it."""
    return (("authn-token", token),) if token else ()


class _CallbackNoise:
    """Drop grpc's "Exception in callback MetadataClientInterceptor..." log records.

    The caller gets (and the hook translates) the same error, so the record only
    adds error-level noise to healthy runs, e.g. for an expected NOT_FOUND.
    """

    def filter(self, record: Any) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            str(record.msg).startswith("Exception in callback")
            and any("MetadataClientInterceptor" in str(arg) for arg in args)
        )


_NOISE_FILTER = _CallbackNoise()


def quiet_callback_noise() -> None:
    """Install the filter on grpc's channel logger (idempotent)."""
    import logging

    logger = logging.getLogger("grpc._channel")
    if _NOISE_FILTER not in logger.filters:
        logger.addFilter(_NOISE_FILTER)
