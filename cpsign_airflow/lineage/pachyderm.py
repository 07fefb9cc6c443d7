"""Pachyderm repos as OpenLineage datasets, the way dbt.cloud and databricks report theirs.

A repo is the dataset ``project/repo`` in the namespace ``pachyderm://host:port`` of
the pachd that holds it (port 30650 when not given). A repo, not a branch or a commit:
commits are versions of the dataset, the way a table's rows change, and every pipeline
and task of the workflow reads and writes a repo's ``master``. An Asset URI naming a path
inside the repo (``pachyderm://host:port/project/repo/some/path``) is the dataset
``project/repo/some/path``, the way OpenLineage names an object store's files.

Two routes reach OpenLineage:

- the operators and the sensor return an ``OperatorLineage`` from
  ``get_openlineage_facets_on_complete``;
- the hook reports the repos it reads and writes to Airflow's hook-lineage collector as
  ``pachyderm://host:port/project/repo`` Assets, so a ``@task`` that reads a model through
  the hook reports it too. The provider's ``asset-uris`` entry (provider.yaml) registers
  :func:`sanitize_uri`, :func:`create_asset` and :func:`convert_asset_to_openlineage` for
  the ``pachyderm`` scheme; without the converter OpenLineage drops those Assets.

Without the OpenLineage provider installed Airflow never calls the converter, and nothing
here imports it: this module imports only the standard library at load, because Airflow
imports the handler whenever it normalizes any Asset URI.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from urllib.parse import SplitResult

SCHEME = "pachyderm"
DEFAULT_PORT = 30650


def namespace(host: str, port: int | None) -> str:
    return f"{SCHEME}://{host}:{port or DEFAULT_PORT}"


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


# ---------------------------------------------------------------- asset-uris (provider.yaml)


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's normalizer of ``pachyderm://`` Asset URIs: host required, port 30650
    added when missing, a project and a repo required in the path."""
    if not uri.hostname:
        raise ValueError("A pachyderm:// Asset URI must name pachd's host")
    if uri.port is None:
        uri = uri._replace(netloc=f"{uri.netloc.rstrip(':')}:{DEFAULT_PORT}")
    segments = uri.path.strip("/").split("/")
    if len(segments) < 2 or not all(segments[:2]):
        raise ValueError(
            "A pachyderm:// Asset URI must name a project and a repo: "
            "pachyderm://host:port/project/repo"
        )
    return uri._replace(scheme=SCHEME)


def create_asset(
    *,
    host: str,
    project: str,
    repo: str,
    port: int = DEFAULT_PORT,
    path: str = "",
    extra: dict | None = None,
) -> Any:
    """The Asset of ``project/repo`` (and a path in it) on the pachd at ``host:port``."""
    from airflow.providers.common.compat.assets import Asset

    tail = "/" + path.strip("/") if path.strip("/") else ""
    return Asset(uri=f"{namespace(host, port)}/{project}/{repo}{tail}", extra=extra)


def convert_asset_to_openlineage(asset: Any, lineage_context: Any) -> Any:
    """OpenLineage Dataset of a normalized ``pachyderm://host:port/project/repo[/path]``
    Asset: namespace ``pachyderm://host:port``, name ``project/repo[/path]``, the same
    dataset the operators report."""
    from urllib.parse import urlsplit

    from airflow.providers.common.compat.openlineage.facet import Dataset

    parsed = urlsplit(asset.uri)
    netloc = parsed.netloc.rpartition("@")[2]  # never a token in a namespace
    return Dataset(namespace=f"{SCHEME}://{netloc}", name=parsed.path.strip("/"))
