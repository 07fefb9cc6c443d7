"""Small pipeline specs for tests against pachd."""

from __future__ import annotations

COPY_CMD = [
    "sh",
    "-c",
    'for d in /pfs/*; do [ "$d" = /pfs/out ] || cp -r "$d"/. /pfs/out/; done',
]


def copy_spec(name: str, repo: str, cmd: list[str] | None = None, image: str = "busybox") -> dict:
    """A pipeline copying each file of ``repo`` (glob /*), or running ``cmd`` instead."""
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
        "transform": {"image": image, "cmd": cmd or COPY_CMD},
    }
