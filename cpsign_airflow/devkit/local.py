"""Running the bundled chain's real stages on this machine (the local pachd, demo, tests).

On a cluster the stage image provides the commands and ``/opt/cpsign``; here the local
pachd runs each transform as a process with this process's environment, so that
environment must find the stage entry points (this interpreter's ``bin``) and the CPSign
launcher (``$CPSIGN``), and pachd must hold the secrets the specs mount.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cpsign_airflow.cpsign import versions

RUNTIME = Path(__file__).resolve().parent.parent / "stages" / "runtime"
#: The CPSign version the runtime installs; a configuration's cpsign.version must match it.
CPSIGN_VERSION = os.environ.get("CPSIGN_VERSION", versions.CPSIGN_VERSION)


def install_cpsign(dest: Path | None = None) -> Path:
    """Build (once) and return the ``cpsign`` launcher of ``stages/runtime`` (Maven)."""
    args = ["bash", str(RUNTIME / "install.sh")] + ([str(dest)] if dest else [])
    out = subprocess.run(
        args,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "CPSIGN_VERSION": CPSIGN_VERSION},
    )
    return Path(out.stdout.strip().splitlines()[-1])


def stage_environment(launcher: Path) -> dict[str, str]:
    """Variables that let local transforms find ``cpsign-*`` and the CPSign launcher."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        path = bin_dir + os.pathsep + path
    return {"PATH": path, "CPSIGN": str(launcher)}


def create_stage_secrets(
    address: str, workflow_name: str, model_store: dict[str, str] | None = None
) -> list[str]:
    """Create the Kubernetes secrets the bundled specs mount, as a cluster admin would.

    pachd refuses a pipeline whose secret is missing. The source-database password is a
    placeholder (the local SQLite source needs none); without ``model_store``
    credentials the publish stage records that nothing was published.
    """
    from pachyderm_sdk import Client

    from cpsign_airflow.cpsign.pipelines import default_spec_vars

    spec_vars = default_spec_vars(workflow_name)
    secrets = {
        spec_vars["source_db_secret"]: {spec_vars["source_db_secret_key"]: "local-placeholder"},
        spec_vars["model_store_secret"]: model_store or {"about": "no model store configured"},
    }
    # As `pachctl create secret` would: each one unless one of that name exists.
    client = Client.from_pachd_address(address)
    existing = {info.secret.name for info in client.pps.list_secret().secret_info}
    for name, data in secrets.items():
        if name not in existing:
            client.pps.create_secret(name=name, data=dict(data))
    return sorted(secrets)
