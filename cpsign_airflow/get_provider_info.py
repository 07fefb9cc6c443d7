"""Entry point Airflow's ProvidersManager calls to discover this provider."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any


@cache
def get_provider_info() -> dict[str, Any]:
    """Return provider metadata from the packaged ``provider.yaml``.

    The connection form is declared there (``conn-fields``/``ui-field-behaviour``),
    so the Airflow UI renders it without importing the hook or grpc. ``versions`` is
    ``cpsign_airflow.__version__``, the one place the version is kept (pyproject.toml
    reads it too).
    """
    import yaml

    from cpsign_airflow import __version__

    text = files("cpsign_airflow").joinpath("provider.yaml").read_text(encoding="utf-8")
    info = yaml.safe_load(text)
    info["versions"] = [__version__]
    return info
