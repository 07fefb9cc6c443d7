"""versionpb_v2.API."""

from __future__ import annotations

import platform

from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api.version import Version

MAJOR, MINOR, MICRO = 2, 12, 0
ADDITIONAL = "local-pachd"


class VersionService:
    service = "versionpb_v2.API"

    def methods(self) -> dict:
        return {"GetVersion": ("unary_unary", Empty, self.get_version)}

    async def get_version(self, request: Empty, context: object) -> Version:
        return Version(
            major=MAJOR,
            minor=MINOR,
            micro=MICRO,
            additional=ADDITIONAL,
            go_version="",
            platform=f"python{platform.python_version()}",
        )
