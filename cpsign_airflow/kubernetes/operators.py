"""Operators for the Kubernetes steps the original workflow did by hand.

* :class:`KubernetesSecretFromConnectionOperator` - the Secrets pipeline specs
  mount (``chembl-mysql``, ``cpsign-license``, ``modelweb-api-info``), built
  from Airflow connections and Variables;
* :class:`KubernetesCheckPipelineSecretsOperator` - fail before creating
  pipelines whose ``transform.secrets`` do not exist;
* :class:`CPSignPredictionServiceOperator` - serve a trained model jar with a
  CPSign prediction server (Deployment + Service).

All go through the cncf-kubernetes provider's ``KubernetesHook`` (connection
``kubernetes_default``: in-cluster, ``kube_config_path`` or inline
``kube_config``). The permissions they need are in ``deploy/rbac.yaml``.
Thin layers over :mod:`cpsign_airflow.kubernetes`; they return plain dicts
through XCom, never secret values.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from cpsign_airflow.kubernetes.manifests import validate_container_resources
from cpsign_airflow.kubernetes.prediction import PredictionServiceSpec
from cpsign_airflow.specs.templating import SpecTemplatesMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

    from cpsign_airflow.kubernetes.client import KubeClient


class _KubernetesOperator(BaseOperator):
    def __init__(self, *, kubernetes_conn_id: str = "kubernetes_default", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kubernetes_conn_id = kubernetes_conn_id

    def get_client(self) -> KubeClient:
        from cpsign_airflow.kubernetes.client import KubeClient

        return KubeClient(self.kubernetes_conn_id)


class KubernetesSecretFromConnectionOperator(_KubernetesOperator):
    """Create or update a Secret from Airflow connections/Variables.

    ``data_from`` maps each secret key to a source: ``conn:<conn_id>.<field>``
    (field ``login``, ``password``, ``host``, ``port``, ``schema`` or
    ``extra.<key>``) or ``var:<variable>``, either with ``|base64`` when the
    stored text is base64 of binary content. Every source is read (and masked)
    before anything is written; a missing connection, Variable or field fails
    naming it.

    Idempotent: unchanged data is not written (the Secret's resourceVersion
    stays). The Secret is labelled ``app.kubernetes.io/managed-by:
    cpsign-airflow`` and annotated with its sources (never values); an existing
    Secret without that label is not overwritten unless ``allow_takeover``.

    Returns ``{"secret", "namespace", "action", "keys"}`` with action
    ``created``, ``updated`` or ``unchanged`` and the key names.

    Presets for the original workflow's layout: :meth:`for_source_database`,
    :meth:`for_model_store`, :meth:`for_license`.

    .. code-block:: python

        KubernetesSecretFromConnectionOperator(
            task_id="secret_db",
            secret_name="chembl-mysql",
            namespace="pachyderm",
            data_from={"mysql-root-password": "conn:chembl_mysql.password"},
        )
        KubernetesSecretFromConnectionOperator.for_model_store(namespace="pachyderm")
    """

    template_fields: Sequence[str] = ("secret_name", "namespace", "data_from")
    template_fields_renderers = {"data_from": "json"}
    ui_color = "#d5e8f7"

    def __init__(
        self,
        *,
        secret_name: str,
        namespace: str,
        data_from: Mapping[str, str],
        allow_takeover: bool = False,
        labels: Mapping[str, str] | None = None,
        secret_type: str = "Opaque",
        kubernetes_conn_id: str = "kubernetes_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(kubernetes_conn_id=kubernetes_conn_id, **kwargs)
        self.secret_name = secret_name
        self.namespace = namespace
        self.data_from = dict(data_from)
        self.allow_takeover = allow_takeover
        self.labels = dict(labels or {})
        self.secret_type = secret_type

    # ------------------------------------------------------------ presets
    @classmethod
    def _preset(cls, layout: str, fill: dict[str, str], **kwargs: Any):
        from cpsign_airflow.kubernetes.secrets import ORIGINAL_LAYOUT

        name, template = ORIGINAL_LAYOUT[layout]
        kwargs.setdefault("secret_name", name)
        kwargs.setdefault("task_id", f"secret_{layout}")
        data_from = {key: spec.format(**fill) for key, spec in template.items()}
        return cls(data_from=data_from, **kwargs)

    @classmethod
    def for_source_database(
        cls, *, namespace: str, conn_id: str = "chembl_mysql", **kwargs: Any
    ) -> KubernetesSecretFromConnectionOperator:
        """``chembl-mysql`` with key ``mysql-root-password`` = the connection's password."""
        return cls._preset("source_database", {"conn_id": conn_id}, namespace=namespace, **kwargs)

    @classmethod
    def for_model_store(
        cls, *, namespace: str, conn_id: str = "modelweb", **kwargs: Any
    ) -> KubernetesSecretFromConnectionOperator:
        """``modelweb-api-info``: ``user`` = login, ``password``, ``modelweb-url`` = host
        (a full URL), ``keycloak-url`` = extra ``keycloak_url``."""
        return cls._preset("model_store", {"conn_id": conn_id}, namespace=namespace, **kwargs)

    @classmethod
    def for_license(
        cls, *, namespace: str, variable: str = "cpsign_license", **kwargs: Any
    ) -> KubernetesSecretFromConnectionOperator:
        """``cpsign-license`` with key ``license`` (mounted as ``/mnt/lic/license``) from a
        Variable holding the license file base64-encoded. Only CPSign < 2 needs it."""
        return cls._preset("license", {"variable": variable}, namespace=namespace, **kwargs)

    # ------------------------------------------------------------ execute
    def execute(self, context: Context) -> dict[str, Any]:
        from cpsign_airflow.kubernetes.secrets import (
            SOURCES_ANNOTATION,
            ensure_secret,
            resolve_data,
        )

        data = resolve_data(self.data_from)
        action = ensure_secret(
            self.get_client(),
            self.namespace,
            self.secret_name,
            data,
            allow_takeover=self.allow_takeover,
            labels=self.labels,
            annotations={SOURCES_ANNOTATION: json.dumps(self.data_from, sort_keys=True)},
            secret_type=self.secret_type,
        )
        keys = sorted(data)
        self.log.info(
            "Secret %s/%s %s (keys: %s)", self.namespace, self.secret_name, action, ", ".join(keys)
        )
        return {
            "secret": self.secret_name,
            "namespace": self.namespace,
            "action": action,
            "keys": keys,
        }


class KubernetesCheckPipelineSecretsOperator(SpecTemplatesMixin, _KubernetesOperator):
    """Fail if a secret that a pipeline spec mounts (``transform.secrets``) is missing.

    ``specs`` (templated) and ``spec_vars`` are given as to
    :class:`~cpsign_airflow.operators.pachyderm.PachydermCreatePipelineOperator`
    (dicts, files or folders; rendered with the task's Jinja environment). The error names each missing
    secret (or key) and the pipeline that needs it. Returns
    ``[{"pipeline", "secret", "key"}]`` of the references checked.

    .. code-block:: python

        check = KubernetesCheckPipelineSecretsOperator(
            task_id="check_secrets", specs="/opt/airflow/specs/cpsign/", namespace="pachyderm"
        )
        [secret_db, secret_modelweb] >> check >> pipelines
    """

    template_fields: Sequence[str] = ("namespace", "specs", "spec_vars")
    template_fields_renderers = {"spec_vars": "json"}

    def __init__(
        self,
        *,
        namespace: str,
        specs: dict[str, Any] | str | Path | Sequence[dict[str, Any] | str | Path] | None = None,
        spec_vars: dict[str, Any] | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(kubernetes_conn_id=kubernetes_conn_id, **kwargs)
        if specs is None:
            raise ValueError(f"{self.task_id}: give 'specs'")
        self.specs = specs
        self.namespace = namespace
        self.spec_vars = spec_vars or {}

    def execute(self, context: Context) -> list[dict[str, str]]:
        from cpsign_airflow.kubernetes.secrets import check_spec_secrets, spec_secret_refs

        loaded = self.load_task_specs(context)
        check_spec_secrets(loaded, self.namespace, client=self.get_client())
        return spec_secret_refs(loaded)


#: The prediction service's parameters and their defaults: PredictionServiceSpec's.
_SERVICE_DEFAULTS = PredictionServiceSpec.defaults()
_SERVICE_PARAMETERS = tuple(f.name for f in dataclasses.fields(PredictionServiceSpec))

#: Argument names of Airflow's ``Resources`` (BaseOperator's ``resources``).
_AIRFLOW_RESOURCE_KEYS = frozenset({"cpus", "ram", "disk", "gpus"})


def _refuse_kubernetes_resources(resources: Any, task_id: Any) -> None:
    """Fail clearly on a Kubernetes-style ``resources`` dict.

    ``resources`` is BaseOperator's own argument (Airflow executor resources,
    keys ``cpus``/``ram``/``disk``/``gpus``); Airflow turns a dict given there
    into ``Resources(**dict)``, which fails with "unexpected keyword argument
    'limits'". Such a dict belongs in ``container_resources``.
    """
    if isinstance(resources, Mapping) and set(resources) - _AIRFLOW_RESOURCE_KEYS:
        unknown = ", ".join(repr(k) for k in sorted(set(resources) - _AIRFLOW_RESOURCE_KEYS))
        raise TypeError(
            f"{task_id or 'CPSignPredictionServiceOperator'}: 'resources' is Airflow's own "
            f"operator argument (executor resources: cpus, ram, disk, gpus), not the "
            f"prediction server's Kubernetes resources (got keys {unknown}); pass "
            "container_resources={'requests': {...}, 'limits': {...}} instead"
        )


class CPSignPredictionServiceOperator(_KubernetesOperator):
    """Serve a trained model with a CPSign prediction server: a Deployment plus a Service.

    The server image follows the predictor type (CPSign ``ptype`` 1 or 3 ->
    ``ghcr.io/arosbio/cpsign-cp-clf-server``, 2 -> ``-cp-reg-server``, 5 ->
    ``-vap-clf-server``; ``image`` overrides it, ``image_tag`` picks the tag -
    pin it, since an image change under an unchanged tag does not roll).
    An init container downloads the model jar into the pod before the server
    starts: from ``model_location`` (``[project/]repo@[branch=]commit:/path``)
    through pachd's S3 gateway, authenticated with the Pachyderm token in
    Secret ``pachyderm_token_secret`` (key ``pachyderm_token_key``) when auth
    is on - a robot token with ``repoReader`` on the model repo suffices - or
    from ``model_url``. The server reads it at ``/var/lib/jetty/model.jar``
    (``MODEL_FILE``); the readiness probe is ``GET /api/v2/health``.

    Re-running with the same model version and settings writes nothing
    (action ``unchanged``); a new version patches the Deployment and rolls its
    pods (action ``rolled``). Objects of that name not labelled
    ``app.kubernetes.io/managed-by: cpsign-airflow`` are not touched unless
    ``allow_takeover``; a Deployment whose selector differs from this
    service's is refused even then (a selector is immutable: delete it
    first). With ``wait_for_ready`` the task waits, up to ``ready_timeout``
    seconds, until the rollout has finished (all replicas ready).

    ``container_resources`` sets the server container's Kubernetes
    ``resources``: ``{"requests": {"cpu": "500m", "memory": "1Gi"}, "limits":
    {"memory": "2Gi"}}``. Any other key (``limit``, ``claims``), resource name
    or a malformed quantity fails before any request, naming it, since a real
    API server would silently drop an unknown key. (``resources`` is Airflow's
    own operator argument, executor resources such as ``{"cpus": 1}``; a
    Kubernetes-style dict given there is refused with a pointer here.)

    Returns ``{"deployment", "service", "namespace", "url", "model_version",
    "model_location", "image", "action", "status", "generation"}`` - what the
    bookkeeping model-artifact row records.

    .. code-block:: python

        CPSignPredictionServiceOperator(
            task_id="deploy",
            namespace="cpsign-models",
            model_name="{{ params.config.train['model-name'] }}",
            predictor_type="{{ params.config.train.ptype }}",
            model_location="LogD-aggregate@{{ ti.xcom_pull('wait')[-1]['output_commit'] }}:/model.jar",
            pachyderm_namespace="pachyderm",
            pachyderm_token_secret="pachyderm-model-reader",
        )
    """

    template_fields: Sequence[str] = (
        "namespace",
        "model_name",
        "predictor_type",
        "model_location",
        "model_url",
        "model_version",
        "image",
        "image_tag",
        "service_name",
        "pachyderm_namespace",
        "s3_gateway_url",
        "pachyderm_token_secret",
    )
    ui_color = "#e3f2d4"

    def __init__(
        self,
        *,
        namespace: str,
        model_name: str,
        predictor_type: int | str,
        model_location: str | None = _SERVICE_DEFAULTS["model_location"],
        model_url: str | None = _SERVICE_DEFAULTS["model_url"],
        model_version: str | None = _SERVICE_DEFAULTS["model_version"],
        image: str | None = _SERVICE_DEFAULTS["image"],
        image_tag: str | None = _SERVICE_DEFAULTS["image_tag"],
        service_name: str | None = _SERVICE_DEFAULTS["service_name"],
        replicas: int = _SERVICE_DEFAULTS["replicas"],
        service_type: str = _SERVICE_DEFAULTS["service_type"],
        service_port: int = _SERVICE_DEFAULTS["service_port"],
        pachyderm_namespace: str | None = _SERVICE_DEFAULTS["pachyderm_namespace"],
        s3_gateway_url: str | None = _SERVICE_DEFAULTS["s3_gateway_url"],
        pachyderm_token_secret: str | None = _SERVICE_DEFAULTS["pachyderm_token_secret"],
        pachyderm_token_key: str = _SERVICE_DEFAULTS["pachyderm_token_key"],
        fetch_image: str | None = _SERVICE_DEFAULTS["fetch_image"],
        container_resources: dict[str, Any] | None = _SERVICE_DEFAULTS["container_resources"],
        allow_takeover: bool = _SERVICE_DEFAULTS["allow_takeover"],
        wait_for_ready: bool = _SERVICE_DEFAULTS["wait_for_ready"],
        ready_timeout: float = _SERVICE_DEFAULTS["ready_timeout"],
        poll_interval: float = _SERVICE_DEFAULTS["poll_interval"],
        kubernetes_conn_id: str = "kubernetes_default",
        **kwargs: Any,
    ) -> None:
        _refuse_kubernetes_resources(kwargs.get("resources"), kwargs.get("task_id"))
        super().__init__(kubernetes_conn_id=kubernetes_conn_id, **kwargs)
        if (model_location is None) == (model_url is None):
            raise ValueError(f"{self.task_id}: give exactly one of model_location or model_url")
        given = locals()
        # one attribute per parameter of the service (Airflow renders the templated ones)
        for name in _SERVICE_PARAMETERS:
            setattr(self, name, given[name])
        self.container_resources = validate_container_resources(container_resources) or None

    def execute(self, context: Context) -> dict[str, Any]:
        from cpsign_airflow.kubernetes.prediction import ensure_prediction_service

        values = {name: getattr(self, name) for name in _SERVICE_PARAMETERS}
        return ensure_prediction_service(
            self.get_client(), PredictionServiceSpec.from_values(values)
        )
