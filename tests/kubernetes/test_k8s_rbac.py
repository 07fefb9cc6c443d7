"""deploy/rbac.yaml grants exactly the verbs the provider's Kubernetes code uses."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import yaml
from kube_target import NAMESPACE

from cpsign_airflow.kubernetes import discovery
from cpsign_airflow.kubernetes.operators import (
    CPSignPredictionServiceOperator,
    KubernetesCheckPipelineSecretsOperator,
    KubernetesSecretFromConnectionOperator,
)
from cpsign_airflow.kubernetes.secrets import check_spec_secrets

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"


def granted() -> set[tuple[str, str, str]]:
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    kinds = {d["kind"] for d in docs}
    assert kinds == {"Role", "RoleBinding"}
    role = next(d for d in docs if d["kind"] == "Role")
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert "namespace" not in role["metadata"]  # chosen with kubectl apply -n
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def exercise_everything(fake, monkeypatch) -> None:
    """Every code path that talks to the API server: create, update, no-op, roll, check."""
    fake.auto_ready = True  # play the deployment controller: wait_for_ready returns at once
    monkeypatch.setenv(
        "AIRFLOW_CONN_CHEMBL_MYSQL", json.dumps({"conn_type": "mysql", "password": "pw-1"})
    )
    secret = KubernetesSecretFromConnectionOperator.for_source_database(namespace=NAMESPACE)
    secret.execute({})  # create
    secret.execute({})  # unchanged
    monkeypatch.setenv(
        "AIRFLOW_CONN_CHEMBL_MYSQL", json.dumps({"conn_type": "mysql", "password": "pw-2"})
    )
    secret.execute({})  # update
    spec = {
        "pipeline": {"name": "p"},
        "transform": {"image": "x", "secrets": [{"name": "chembl-mysql", "mount_path": "/m"}]},
    }
    check_spec_secrets([spec], NAMESPACE)
    KubernetesCheckPipelineSecretsOperator(
        task_id="check", specs=[spec], namespace=NAMESPACE
    ).execute({})

    fake.put_object(
        "services",
        {
            "metadata": {"name": "pachd", "namespace": NAMESPACE},
            "spec": {"ports": [{"name": "api-grpc-port", "port": 30650}]},
        },
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    discovery.resolve_pachd_address(NAMESPACE)
    discovery.resolve_pachd_address(NAMESPACE, in_cluster=True)

    fake.put_object(
        "secrets",
        {
            "metadata": {"name": "reader", "namespace": NAMESPACE},
            "data": {"auth-token": base64.b64encode(b"t").decode()},
        },
    )
    for commit, port in (("a" * 32, 80), ("a" * 32, 80), ("b" * 32, 80), ("b" * 32, 8080)):
        CPSignPredictionServiceOperator(
            task_id="deploy",
            namespace=NAMESPACE,
            model_name="m",
            predictor_type=1,
            model_location=f"r@{commit}:/m.jar",
            pachyderm_token_secret="reader",
            service_port=port,
            wait_for_ready=True,
        ).execute({})


def test_manifest_grants_exactly_the_verbs_used(kube_conn, fake, monkeypatch):
    exercise_everything(fake, monkeypatch)
    assert [c for c in fake.calls if c.code not in (200, 201, 404)] == []
    used = fake.verbs_used()
    assert used == granted(), (
        f"used but not granted: {used - granted()}; granted but unused: {granted() - used}"
    )


def test_each_granted_verb_is_needed(kube_conn, fake, kube_apiserver, monkeypatch):
    """Denying any one granted verb makes some provider path fail with a clear 403."""
    from cpsign_airflow.kubernetes.errors import KubernetesError
    from cpsign_airflow.testing.kube_apiserver import FakeKubeApiServer

    for group, resource, verb in sorted(granted()):
        with FakeKubeApiServer() as fresh:  # empty state, so every create is needed again
            fresh.create_namespace(NAMESPACE)
            fresh.write_kubeconfig(kube_apiserver.kubeconfig_path)
            fresh.deny(verb, resource)
            try:
                exercise_everything(fresh, monkeypatch)
            except KubernetesError as exc:
                assert "403 Forbidden" in str(exc)
                assert f'cannot {verb} resource "{resource}" in API group "{group}"' in str(exc)
            else:
                raise AssertionError(f"{group}/{resource} {verb} is granted but never needed")


def test_operator_module_imports_no_kubernetes_client():
    code = (
        "import sys, cpsign_airflow.kubernetes.operators, cpsign_airflow.kubernetes.discovery;"
        "bad = [m for m in sys.modules if m == 'kubernetes' or m.startswith('kubernetes.')"
        " or m.endswith('cncf.kubernetes.hooks.kubernetes')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
