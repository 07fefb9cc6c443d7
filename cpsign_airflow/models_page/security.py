"""Security headers on every response of the models page.

The page is server-rendered HTML with an inline ``<style>`` block and inline SVG
(matplotlib's, with ``style`` attributes); it runs no script and loads nothing,
so the policy allows inline styles and nothing else to run or be fetched. The
Airflow UI shows the page in an iframe of its own origin: ``frame-ancestors
'self'`` (and ``X-Frame-Options: SAMEORIGIN`` for older browsers) allows that and
nothing else.

:class:`SecurityHeaders` is a plain ASGI wrapper, so it sees every response, the
server's own 500 page included. Only the standard library is imported here: the
plugin module uses it too, and every Airflow component imports that one.
"""

from __future__ import annotations

from typing import Any

#: No script, no fetch, no plugin, no form; inline styles (the page's and the plot's).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
    )
)

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "SAMEORIGIN"),
    ("referrer-policy", "same-origin"),
)

_NAMES = frozenset(name.encode("latin-1") for name, _ in SECURITY_HEADERS)
_RAW = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in SECURITY_HEADERS]


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every HTTP response, replacing any
    a route set itself."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if bytes(name).lower() not in _NAMES
                ]
                message = {**message, "headers": [*kept, *_RAW]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
