"""Pachyderm repos as OpenLineage datasets, the way dbt.cloud and databricks report theirs.

A repo is the dataset ``project/repo`` in the namespace ``pachyderm://host:port`` of
the pachd that holds it. The operators and the sensor return an ``OperatorLineage``
from ``get_openlineage_facets_on_complete``; without the OpenLineage provider
installed Airflow never calls it, and nothing here is imported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def namespace(host: str, port: int | None) -> str:
    return f"pachyderm://{host}:{port or 30650}"


def dataset(host: str, port: int | None, project: str, repo: str) -> Any:
    from airflow.providers.common.compat.openlineage.facet import Dataset

    return Dataset(namespace=namespace(host, port), name=f"{project}/{repo}")


def operator_lineage(
    hook: Any, inputs: Iterable[tuple[str, str]], outputs: Iterable[tuple[str, str]]
) -> Any:
    """``OperatorLineage`` of (project, repo) inputs and outputs on ``hook``'s pachd."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    address = hook.address
    return OperatorLineage(
        inputs=[dataset(address.host, address.port, p, r) for p, r in inputs],
        outputs=[dataset(address.host, address.port, p, r) for p, r in outputs],
    )
