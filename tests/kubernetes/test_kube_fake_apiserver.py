"""The fake API server, driven by the real ``kubernetes`` client through a kubeconfig."""

from __future__ import annotations

import json

import pytest
from conftest import NAMESPACE


@pytest.fixture
def api(fake, kube_apiserver):
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(kube_apiserver.kubeconfig_path), client_configuration=configuration
    )
    api_client = client.ApiClient(configuration)
    return client.CoreV1Api(api_client), client.AppsV1Api(api_client)


def status_of(exc):
    return exc.status, json.loads(exc.body)


def deployment(name="web", image="nginx:1.25", labels=None):
    labels = labels or {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def test_secret_lifecycle_and_status_codes(api, fake):
    from kubernetes.client.exceptions import ApiException

    core, _ = api
    created = core.create_namespaced_secret(
        NAMESPACE, {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    )
    assert created.data == {"k": "dg=="} and created.type == "Opaque"
    rv = created.metadata.resource_version

    with pytest.raises(ApiException) as exc:
        core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "s"}})
    code, body = status_of(exc.value)
    assert (code, body["reason"], body["message"]) == (
        409,
        "AlreadyExists",
        'secrets "s" already exists',
    )

    # A PUT that changes nothing keeps the resourceVersion; a real change bumps it.
    same = core.replace_namespaced_secret(
        "s", NAMESPACE, {"metadata": {"name": "s"}, "data": {"k": "dg=="}}
    )
    assert same.metadata.resource_version == rv
    changed = core.replace_namespaced_secret(
        "s", NAMESPACE, {"metadata": {"name": "s", "resourceVersion": rv}, "data": {"k": "dw=="}}
    )
    assert int(changed.metadata.resource_version) > int(rv)

    # A PUT from a stale read conflicts instead of overwriting.
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_secret(
            "s", NAMESPACE, {"metadata": {"name": "s", "resourceVersion": rv}, "data": {}}
        )
    assert status_of(exc.value)[1]["reason"] == "Conflict"

    with pytest.raises(ApiException) as exc:
        core.create_namespaced_secret(
            NAMESPACE, {"metadata": {"name": "Bad_Name"}, "data": {"bad key": "eA=="}}
        )
    code, body = status_of(exc.value)
    assert code == 422 and body["reason"] == "Invalid"
    fields = {c["field"] for c in body["details"]["causes"]}
    assert fields == {"metadata.name", "data[bad key]"}

    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_secret(
            "s", NAMESPACE, {"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {}}
        )
    assert (
        status_of(exc.value)[0] == 422
        and "field is immutable" in status_of(exc.value)[1]["message"]
    )

    with pytest.raises(ApiException) as exc:
        core.read_namespaced_secret("nope", NAMESPACE)
    assert status_of(exc.value)[1] == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "group": "", "kind": "secrets"},
        "code": 404,
    }
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_secret("no-such-ns", {"metadata": {"name": "s"}})
    assert status_of(exc.value)[1]["message"] == 'namespaces "no-such-ns" not found'

    core.delete_namespaced_secret("s", NAMESPACE)
    assert fake.get_object("secrets", NAMESPACE, "s") is None


def test_deny_answers_403_like_rbac(api, fake):
    from kubernetes.client.exceptions import ApiException

    core, _ = api
    fake.deny("create", "secrets", NAMESPACE)
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "x"}})
    code, body = status_of(exc.value)
    assert code == 403 and body["reason"] == "Forbidden"
    assert body["message"] == (
        'secrets is forbidden: User "system:serviceaccount:airflow:airflow" cannot create '
        'resource "secrets" in API group "" in the namespace "pachyderm"'
    )
    core.create_namespaced_secret(
        "default", {"metadata": {"name": "x"}}
    )  # other namespace: allowed
    fake.allow("create", "secrets", NAMESPACE)
    core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "x"}})


def test_wrong_token_is_401(fake, kube_apiserver, tmp_path):
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    cfg = fake.kubeconfig()
    cfg["users"][0]["user"]["token"] = "wrong"
    path = tmp_path / "config"
    path.write_text(json.dumps(cfg))
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(path), client_configuration=configuration)
    with pytest.raises(ApiException) as exc:
        client.CoreV1Api(client.ApiClient(configuration)).read_namespaced_secret("x", "default")
    assert exc.value.status == 401


def test_version_and_discovery(api):
    from kubernetes import client

    core, _ = api
    version = client.VersionApi(core.api_client).get_code()
    assert version.git_version.startswith("v1.")
    assert [g.name for g in client.ApisApi(core.api_client).get_api_versions().groups] == ["apps"]
    resources = {r.name for r in core.get_api_resources().resources}
    assert resources == {"secrets", "services"}


def test_deployment_generation_patch_and_validation(api, fake):
    from kubernetes.client.exceptions import ApiException

    _, apps = api
    created = apps.create_namespaced_deployment(NAMESPACE, deployment())
    assert created.metadata.generation == 1 and created.spec.replicas == 1
    assert created.status.ready_replicas == 1  # auto_ready: the controller's end state
    rv = created.metadata.resource_version

    merge = "application/merge-patch+json"
    same = apps.patch_namespaced_deployment(
        "web", NAMESPACE, {"spec": {"replicas": 1}}, _content_type=merge
    )
    assert (same.metadata.generation, same.metadata.resource_version) == (1, rv)

    labelled = apps.patch_namespaced_deployment(
        "web", NAMESPACE, {"metadata": {"labels": {"tier": "x"}}}, _content_type=merge
    )
    assert labelled.metadata.generation == 1  # metadata only: no new generation
    assert labelled.metadata.resource_version != rv

    rolled = apps.patch_namespaced_deployment(
        "web",
        NAMESPACE,
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}},
        _content_type=merge,
    )
    assert rolled.metadata.generation == 2
    assert rolled.status.observed_generation == 2

    # Strategic merge (the client's default for dicts) merges containers by name.
    smp = apps.patch_namespaced_deployment(
        "web",
        NAMESPACE,
        {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox:1"}]}}}},
    )
    assert [c.name for c in smp.spec.template.spec.containers] == ["main", "side"]

    with pytest.raises(ApiException) as exc:
        apps.patch_namespaced_deployment(
            "web",
            NAMESPACE,
            {"spec": {"selector": {"matchLabels": {"app": "other"}}}},
            _content_type=merge,
        )
    code, body = status_of(exc.value)
    assert code == 422
    assert {c["field"] for c in body["details"]["causes"]} == {
        "spec.template.metadata.labels",
        "spec.selector",
    }
    with pytest.raises(ApiException) as exc:
        body = deployment(name="bad")
        del body["spec"]["selector"]
        apps.create_namespaced_deployment(NAMESPACE, body)
    assert exc.value.status == 422
    assert "spec.selector: Required value" in status_of(exc.value)[1]["message"]


def test_services_defaults_and_label_selector_list(api, fake):
    core, _ = api
    svc = {
        "metadata": {"name": "web", "labels": {"team": "a"}},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80}],
        },
    }
    created = core.create_namespaced_service(NAMESPACE, svc)
    assert created.spec.cluster_ip.startswith("10.96.")
    port = created.spec.ports[0]
    assert (port.protocol, port.target_port, 30000 <= port.node_port <= 32767) == ("TCP", 80, True)
    patched = core.patch_namespaced_service(
        "web",
        NAMESPACE,
        {"spec": {"ports": [{"name": "http", "port": 80}]}},
        _content_type="application/merge-patch+json",
    )
    assert patched.spec.ports[0].node_port == port.node_port  # kept, as the API server does
    assert patched.spec.cluster_ip == created.spec.cluster_ip
    core.create_namespaced_service(
        NAMESPACE, {"metadata": {"name": "other"}, "spec": {"ports": [{"port": 1}]}}
    )
    names = [
        s.metadata.name
        for s in core.list_namespaced_service(NAMESPACE, label_selector="team=a").items
    ]
    assert names == ["web"]
    assert fake.verbs_used() >= {("", "services", "list"), ("", "services", "patch")}
