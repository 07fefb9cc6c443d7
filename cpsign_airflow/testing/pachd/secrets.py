"""Create secrets in a pachd through its API, as ``pachctl create secret`` would."""

from __future__ import annotations

from collections.abc import Mapping


def ensure_secrets(
    address: str, secrets: Mapping[str, Mapping[str, str]], token: str | None = None
) -> list[str]:
    """Create each of ``secrets`` (name -> data) unless one of that name exists; the names."""
    from pachyderm_sdk import Client

    client = Client.from_pachd_address(address, auth_token=token)
    existing = {info.secret.name for info in client.pps.list_secret().secret_info}
    for name, data in secrets.items():
        if name not in existing:
            client.pps.create_secret(name=name, data=dict(data))
    return sorted(secrets)
