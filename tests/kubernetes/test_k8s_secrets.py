"""Secrets from Airflow connections/Variables, in real DAG runs and unit-level."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from dag_runner import run_dag, write_dag
from kube_target import NAMESPACE

from cpsign_airflow.kubernetes import errors
from cpsign_airflow.kubernetes.operators import KubernetesSecretFromConnectionOperator
from cpsign_airflow.kubernetes.secrets import check_spec_secrets, parse_source

DAG_SOURCE = """
import datetime
from airflow.sdk import DAG
from cpsign_airflow.kubernetes.operators import KubernetesSecretFromConnectionOperator as Op

with DAG("{dag_id}", schedule=None, start_date=datetime.datetime(2024, 1, 1),
         default_args={{"retries": 0}}) as dag:
    Op.for_source_database(task_id="db", namespace="{ns}", conn_id="chembl_mysql",
                           allow_takeover={takeover})
    Op.for_model_store(task_id="modelweb", namespace="{ns}", conn_id="modelweb")
    Op.for_license(task_id="license", namespace="{ns}", variable="cpsign_license")
"""


class Creds:
    """Random credentials per test, set as Airflow connections/Variable through env vars."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.mw_password = f"mw-{uuid.uuid4().hex}"
        self.license = b"\x00CPSIGN-LICENSE\xff" + uuid.uuid4().bytes
        self.set_db_password(f"db-{uuid.uuid4().hex}")
        monkeypatch.setenv(
            "AIRFLOW_CONN_MODELWEB",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": "https://modelweb.example.org",
                    "login": "mw-user",
                    "password": self.mw_password,
                    "extra": {"keycloak_url": "https://keycloak.example.org"},
                }
            ),
        )
        monkeypatch.setenv("AIRFLOW_VAR_CPSIGN_LICENSE", base64.b64encode(self.license).decode())

    def set_db_password(self, password: str) -> None:
        self.db_password = password
        self.monkeypatch.setenv(
            "AIRFLOW_CONN_CHEMBL_MYSQL",
            json.dumps(
                {
                    "conn_type": "mysql",
                    "host": "chembl-mysql",
                    "login": "root",
                    "password": password,
                }
            ),
        )

    def forbidden_strings(self) -> list[str]:
        values = [self.db_password.encode(), self.mw_password.encode(), self.license]
        out = []
        for value in values:
            out.append(base64.b64encode(value).decode())
            if value.isascii():
                out.append(value.decode())
        return out


@pytest.fixture
def creds(monkeypatch):
    return Creds(monkeypatch)


def decoded(kube, name):
    obj = kube.get("secrets", name)
    return {k: base64.b64decode(v) for k, v in obj["data"].items()}


def rv(kube, name):
    return kube.get("secrets", name)["metadata"]["resourceVersion"]


def writes(kube):
    """The fake's record of write requests (None against a real server)."""
    return [c for c in kube.fake.calls if c.verb != "get"] if kube.fake else None


def everything_recorded(airflow_home, dag_id, run_id, captured) -> str:
    """Captured output, task log files, every XCom and rendered-field row of the run."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    parts = [captured.out, captured.err]
    for path in (airflow_home / "logs").rglob("*"):
        if path.is_file() and dag_id in str(path):
            parts.append(path.read_text(errors="replace"))
    with create_session() as session:
        for row in session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id):
            parts.append(f"{row.key}={json.dumps(XComModel.deserialize_value(row))}")
        for row in session.query(RenderedTaskInstanceFields).filter_by(
            dag_id=dag_id, run_id=run_id
        ):
            parts.append(json.dumps(row.rendered_fields, default=str))
    return "\n".join(parts)


def make_dag(airflow_db, name, takeover=False):
    source = DAG_SOURCE.format(dag_id=name, ns=NAMESPACE, takeover=takeover)
    return write_dag(airflow_db / "dags", name, source)


def test_secrets_created_updated_unchanged_without_leaking(
    airflow_db, kube_conn, kube, creds, capfd
):
    path = make_dag(airflow_db, "k8s_secrets_lifecycle")
    first = run_dag(path, path.stem)
    assert first.state == "success", first.task_states
    assert first.xcom["db"] == {
        "secret": "chembl-mysql",
        "namespace": NAMESPACE,
        "action": "created",
        "keys": ["mysql-root-password"],
    }
    assert first.xcom["modelweb"]["keys"] == ["keycloak-url", "modelweb-url", "password", "user"]
    assert first.xcom["license"]["keys"] == ["license"]
    assert decoded(kube, "chembl-mysql") == {"mysql-root-password": creds.db_password.encode()}
    assert decoded(kube, "modelweb-api-info") == {
        "user": b"mw-user",
        "password": creds.mw_password.encode(),
        "modelweb-url": b"https://modelweb.example.org",
        "keycloak-url": b"https://keycloak.example.org",
    }
    assert decoded(kube, "cpsign-license") == {"license": creds.license}
    meta = kube.get("secrets", "chembl-mysql")["metadata"]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "cpsign-airflow"
    assert json.loads(meta["annotations"]["cpsign-airflow/sources"]) == {
        "mysql-root-password": "conn:chembl_mysql.password"
    }
    versions = {
        name: rv(kube, name) for name in ("chembl-mysql", "modelweb-api-info", "cpsign-license")
    }

    # Same data again: nothing written, resourceVersions unchanged.
    writes_before = writes(kube)
    second = run_dag(path, path.stem)
    assert {r["action"] for r in second.xcom.values()} == {"unchanged"}
    assert {name: rv(kube, name) for name in versions} == versions
    assert writes(kube) == writes_before

    # A rotated password in the connection: that secret alone is updated.
    old_password = creds.db_password
    creds.set_db_password(f"db-{uuid.uuid4().hex}")
    third = run_dag(path, path.stem)
    assert {t: r["action"] for t, r in third.xcom.items()} == {
        "db": "updated",
        "modelweb": "unchanged",
        "license": "unchanged",
    }
    assert int(rv(kube, "chembl-mysql")) > int(versions["chembl-mysql"])
    assert rv(kube, "modelweb-api-info") == versions["modelweb-api-info"]
    assert decoded(kube, "chembl-mysql") == {"mysql-root-password": creds.db_password.encode()}

    # No secret value (raw or base64) in output, log files, XCom or rendered fields.
    captured = capfd.readouterr()
    for result in (first, second, third):
        text = everything_recorded(airflow_db, path.stem, result.run_id, captured)
        assert "mysql-root-password" in text  # the scan does see the task output
        for value in creds.forbidden_strings() + [
            old_password,
            base64.b64encode(old_password.encode()).decode(),
        ]:
            assert value not in text


def test_refuses_to_overwrite_unmanaged_secret(airflow_db, kube_conn, kube, creds, capfd):
    kube.create(
        "secrets",
        {
            "metadata": {"name": "chembl-mysql", "namespace": NAMESPACE, "labels": {"team": "dba"}},
            "data": {"mysql-root-password": base64.b64encode(b"theirs").decode()},
        },
    )
    before = kube.get("secrets", "chembl-mysql")
    path = make_dag(airflow_db, "k8s_secrets_refuse")
    result = run_dag(path, path.stem)
    assert result.task_states["db"] == "failed"
    assert result.task_states["modelweb"] == "success"
    assert kube.get("secrets", "chembl-mysql") == before
    out = capfd.readouterr()
    assert f"secret {NAMESPACE}/chembl-mysql exists and is not managed by cpsign-airflow" in (
        out.out + out.err
    )

    adopt = make_dag(airflow_db, "k8s_secrets_adopt", takeover=True)
    adopted = run_dag(adopt, adopt.stem)
    assert adopted.xcom["db"]["action"] == "updated"
    meta = kube.get("secrets", "chembl-mysql")["metadata"]
    assert meta["labels"] == {"team": "dba", "app.kubernetes.io/managed-by": "cpsign-airflow"}
    assert decoded(kube, "chembl-mysql") == {"mysql-root-password": creds.db_password.encode()}


def test_missing_connection_or_field_fails_before_any_write(kube_conn, kube, creds, monkeypatch):
    op = KubernetesSecretFromConnectionOperator(
        task_id="t",
        secret_name="s",
        namespace=NAMESPACE,
        data_from={"a": "conn:chembl_mysql.password", "b": "conn:no_such_conn.password"},
    )
    with pytest.raises(errors.SecretSourceError, match="connection 'no_such_conn' does not exist"):
        op.execute({})
    op = KubernetesSecretFromConnectionOperator.for_model_store(
        namespace=NAMESPACE, conn_id="chembl_mysql"
    )
    with pytest.raises(
        errors.SecretSourceError,
        match="connection 'chembl_mysql' extra field 'keycloak_url' does not exist or is empty",
    ):
        op.execute({})
    monkeypatch.delenv("AIRFLOW_VAR_CPSIGN_LICENSE")
    with pytest.raises(errors.SecretSourceError, match="Variable 'cpsign_license' does not exist"):
        KubernetesSecretFromConnectionOperator.for_license(namespace=NAMESPACE).execute({})
    monkeypatch.setenv("AIRFLOW_VAR_CPSIGN_LICENSE", "not base64!")
    with pytest.raises(errors.SecretSourceError, match="is not valid base64") as exc:
        KubernetesSecretFromConnectionOperator.for_license(namespace=NAMESPACE).execute({})
    assert "not base64!" not in str(exc.value)
    if kube.fake:
        assert kube.fake.calls == []  # nothing was even read from the cluster
    assert kube.list("secrets") == []


def test_rbac_denial_is_reported_clearly(kube_conn, fake, creds):
    fake.deny("create", "secrets", NAMESPACE)
    op = KubernetesSecretFromConnectionOperator.for_source_database(namespace=NAMESPACE)
    with pytest.raises(errors.KubernetesForbidden) as exc:
        op.execute({})
    message = str(exc.value)
    assert message.startswith("create secret pachyderm/chembl-mysql: secrets is forbidden: ")
    assert (
        'cannot create resource "secrets" in API group "" in the namespace "pachyderm"' in message
    )
    assert "(403 Forbidden)" in message and "deploy/rbac.yaml" in message
    assert creds.db_password not in message
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_source_specs_parse():
    assert parse_source("conn:a.b.password").field == "password"
    assert parse_source("conn:a.b.password").ident == "a.b"
    extra = parse_source("conn:modelweb.extra.keycloak_url")
    assert (extra.ident, extra.field, extra.extra_key) == ("modelweb", "extra", "keycloak_url")
    assert parse_source("var:lic|base64").base64 is True
    for bad in ("conn:modelweb", "conn:modelweb.token", "env:X", "var:"):
        with pytest.raises(errors.SecretSourceError):
            parse_source(bad)


SPECS = [
    {
        "pipeline": {"name": "LogD-ingestion"},
        "transform": {
            "image": "x",
            "secrets": [
                {"name": "chembl-mysql", "env_var": "MYSQL_PASSWORD", "key": "mysql-root-password"}
            ],
        },
    },
    {
        "pipeline": {"name": "LogD-training"},
        "transform": {
            "image": "x",
            "secrets": [{"name": "cpsign-license", "mount_path": "/mnt/lic/"}],
        },
    },
    {
        "pipeline": {"name": "LogD-upload"},
        "transform": {
            "image": "x",
            "secrets": [{"name": "modelweb-api-info", "mount_path": "/mnt/api-info/"}],
        },
    },
]


def test_check_spec_secrets_names_secret_and_pipeline(kube_conn, kube, creds):
    KubernetesSecretFromConnectionOperator.for_model_store(namespace=NAMESPACE).execute({})
    kube.create(
        "secrets",
        {"metadata": {"name": "chembl-mysql", "namespace": NAMESPACE}, "data": {"other": "eA=="}},
    )
    with pytest.raises(errors.MissingPipelineSecrets) as exc:
        check_spec_secrets([("spec.json", s) for s in SPECS], NAMESPACE, kube_conn)
    assert str(exc.value) == (
        f"secret 'chembl-mysql' in namespace '{NAMESPACE}' has no key 'mysql-root-password' "
        "needed by pipeline 'LogD-ingestion'; secret 'cpsign-license' needed by pipeline "
        f"'LogD-training' does not exist in namespace '{NAMESPACE}'"
    )
    assert [m["secret"] for m in exc.value.missing] == ["chembl-mysql", "cpsign-license"]

    KubernetesSecretFromConnectionOperator.for_source_database(
        namespace=NAMESPACE, allow_takeover=True
    ).execute({})
    KubernetesSecretFromConnectionOperator.for_license(namespace=NAMESPACE).execute({})
    check_spec_secrets(SPECS, NAMESPACE, kube_conn)  # all present now
    if kube.fake:
        verbs = {c.verb for c in kube.fake.calls if c.resource == "secrets"}
        assert verbs == {"get", "create", "update"}


def test_check_operator_in_a_dag_run_names_missing_secret_and_pipeline(
    airflow_db, kube_conn, kube, creds, tmp_path, capfd
):
    folder = tmp_path / "specs"
    folder.mkdir()
    for spec in SPECS:
        templated = json.loads(json.dumps(spec).replace("LogD-", "{{ workflow_name }}-"))
        (folder / f"{spec['pipeline']['name']}.json").write_text(json.dumps(templated))
    source = f"""
    import datetime
    from airflow.sdk import DAG
    from cpsign_airflow.kubernetes.operators import (
        KubernetesCheckPipelineSecretsOperator,
        KubernetesSecretFromConnectionOperator as Op,
    )

    with DAG("k8s_check_secrets", schedule=None, start_date=datetime.datetime(2024, 1, 1),
             default_args={{"retries": 0}},
             params={{"folder": "{folder}"}}) as dag:
        check = KubernetesCheckPipelineSecretsOperator(
            task_id="check_secrets",
            namespace="{NAMESPACE}",
            specs="{{{{ params.folder }}}}",
            spec_vars={{"workflow_name": "LogD"}},
        )
    """
    path = write_dag(airflow_db / "dags", "k8s_check_secrets", source)
    failed = run_dag(path, "k8s_check_secrets")
    assert failed.task_states == {"check_secrets": "failed"}
    out = capfd.readouterr()
    assert (
        "secret 'chembl-mysql' needed by pipeline 'LogD-ingestion' does not exist in namespace "
        f"'{NAMESPACE}'" in out.out + out.err
    )
    for preset in ("for_source_database", "for_model_store", "for_license"):
        getattr(KubernetesSecretFromConnectionOperator, preset)(namespace=NAMESPACE).execute({})
    passed = run_dag(path, "k8s_check_secrets")
    assert passed.state == "success"
    assert {(r["pipeline"], r["secret"]) for r in passed.xcom["check_secrets"]} == {
        ("LogD-ingestion", "chembl-mysql"),
        ("LogD-training", "cpsign-license"),
        ("LogD-upload", "modelweb-api-info"),
    }
