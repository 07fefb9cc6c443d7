"""The ``[cpsign]`` options, with provider.yaml's defaults: their one source.

provider.yaml declares every option Airflow shows (``airflow config list``) with its
default; :func:`option` falls back to that default, so no reader repeats it. The
defaults are read once, from the ``provider.yaml`` the package ships (the same cached
metadata Airflow's ProvidersManager loads in every component).

This module sits below everything that reads the options (the workflow's settings,
the alerts, the models page): it imports only Airflow's configuration, and that inside
:func:`option`.
"""

from __future__ import annotations

from typing import Any

SECTION = "cpsign"
#: Where the api-server mounts the models page (:mod:`cpsign_airflow.models_page.plugin`);
#: the alerts link it below Airflow's ``[api] base_url``.
MODELS_PAGE_PREFIX = "/cpsign-models"


def declared_options() -> dict[str, dict[str, Any]]:
    """The ``[cpsign]`` options as provider.yaml declares them."""
    from cpsign_airflow.get_provider_info import get_provider_info

    return get_provider_info()["config"][SECTION]["options"]


def defaults() -> dict[str, str | None]:
    """Each ``[cpsign]`` option's default (None: it has none)."""
    return {key: option.get("default") for key, option in declared_options().items()}


def option(key: str) -> str | None:
    """``[cpsign] key`` as configured, else its declared default; an empty value is unset.

    A ``KeyError`` for an option provider.yaml does not declare: every option is declared.
    """
    from airflow.sdk import conf

    default = defaults()[key]
    return conf.get(SECTION, key, fallback=default) or default
