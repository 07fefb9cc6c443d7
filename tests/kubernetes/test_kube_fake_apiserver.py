"""The fake API server, driven by the real ``kubernetes`` client through a kubeconfig."""

from __future__ import annotations

import base64
import json

import pytest
from kube_target import NAMESPACE


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
    fake.auto_ready = True  # play the deployment controller
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


# ---------------------------------------------------------------------------------------
# Where the fake used to differ from a real kube-apiserver (1.36, with etcd, no
# controllers; issue #23). Each test names the real server's answer and drives the API
# through the kubernetes client only, so it runs against a real server too
# (CPSIGN_TEST_KUBECONFIG).


def answer(call, *args, **kwargs):
    """``(code, Status body)`` of a call that must fail."""
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as exc:
        call(*args, **kwargs)
    return status_of(exc.value)


QUANTITY_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def with_resources(name, resources):
    body = deployment(name)
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = resources
    return body


def test_bad_quantity_is_400_on_create_and_422_on_patch(kube):
    """Real server: a quantity that does not parse fails decoding, so create answers 400
    BadRequest ``Deployment in version "v1" cannot be handled as a Deployment: quantities
    must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'``
    (apimachinery resource.ErrFormatWrong); a merge patch producing one answers 422
    Invalid ``"" is invalid: patch: Invalid value: "<patched object>": <same error>``.
    An unknown suffix: ``unable to parse quantity's suffix``."""
    apps = kube.apps
    code, body = answer(
        apps.create_namespaced_deployment,
        NAMESPACE,
        with_resources("q", {"limits": {"cpu": "1 core"}}),
    )
    assert (code, body["reason"]) == (400, "BadRequest")
    assert body["message"] == (
        f'Deployment in version "v1" cannot be handled as a Deployment: {QUANTITY_ERROR}'
    )
    code, body = answer(
        apps.create_namespaced_deployment,
        NAMESPACE,
        with_resources("q", {"requests": {"memory": "1K"}}),
    )
    assert code == 400 and body["message"].endswith(": unable to parse quantity's suffix")
    good = {
        "limits": {"cpu": "500m", "memory": "1.5Gi"},
        "requests": {"cpu": 0.25, "memory": "1e9"},
    }
    created = apps.create_namespaced_deployment(NAMESPACE, with_resources("q", good))
    assert created.spec.template.spec.containers[0].resources.limits["cpu"] == "500m"
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "x:1"}]}}}}
    patch["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "x"}}
    code, body = answer(
        apps.patch_namespaced_deployment,
        "q",
        NAMESPACE,
        patch,
        _content_type="application/merge-patch+json",
    )
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["message"].startswith(' "" is invalid: patch: Invalid value: "{')
    assert body["message"].endswith(f": {QUANTITY_ERROR}")
    assert body["details"]["causes"][0]["field"] == "patch"


def test_bad_base64_is_400(kube):
    """Real server: ``data`` is []byte, so bad base64 fails decoding: 400 BadRequest
    ``Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input
    byte 4`` (not 422)."""
    code, body = answer(
        kube.core.create_namespaced_secret,
        NAMESPACE,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "b"},
            "data": {"k": "abcd!!!!"},
        },
    )
    assert (code, body["reason"]) == (400, "BadRequest")
    assert body["message"] == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 4'
    )


def test_unknown_resources_field_is_dropped_with_a_warning(kube):
    """Real server (fieldValidation defaults to Warn): an unknown field is dropped, the
    object is created, and the only trace is a header ``Warning: 299 - "unknown field
    \\"spec.template.spec.containers[0].resources.limit\\""``, which the Python client
    does not surface."""
    response = kube.apps.create_namespaced_deployment(
        NAMESPACE,
        with_resources("w", {"limit": {"cpu": "1"}, "requests": {"cpu": "1"}}),
        _preload_content=False,
    )
    assert response.status == 201
    created = json.loads(response.data)
    assert created["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "1"}
    }
    assert 'unknown field \\"spec.template.spec.containers[0].resources.limit\\"' in (
        response.headers.get("Warning") or ""
    )


@pytest.mark.parametrize(
    ("secret_type", "data", "annotations", "causes"),
    [
        ("kubernetes.io/dockerconfigjson", {}, {}, {"data[.dockerconfigjson]": "Required value"}),
        ("kubernetes.io/dockercfg", {}, {}, {"data[.dockercfg]": "Required value"}),
        (
            "kubernetes.io/basic-auth",
            {"other": "eA=="},
            {},
            {"data[username]": "Required value", "data[password]": "Required value"},
        ),
        ("kubernetes.io/ssh-auth", {}, {}, {"data[ssh-privatekey]": "Required value"}),
        (
            "kubernetes.io/tls",
            {"tls.crt": "eA=="},
            {},
            {"data[tls.key]": "Required value"},
        ),
        (
            "kubernetes.io/service-account-token",
            {},
            {},
            {"metadata.annotations[kubernetes.io/service-account.name]": "Required value"},
        ),
    ],
)
def test_typed_secrets_require_their_keys(kube, secret_type, data, annotations, causes):
    """Real server (ValidateSecret): 422 Invalid ``Secret "t" is invalid: data[<key>]:
    Required value`` per missing key (basic-auth: username or password, either one)."""
    body = {
        "metadata": {"name": "t", "annotations": annotations},
        "type": secret_type,
        "data": data,
    }
    code, status = answer(kube.core.create_namespaced_secret, NAMESPACE, body)
    assert (code, status["reason"]) == (422, "Invalid")
    assert {c["field"]: c["message"] for c in status["details"]["causes"]} == causes
    assert {c["reason"] for c in status["details"]["causes"]} == {"FieldValueRequired"}
    assert status["message"].startswith('Secret "t" is invalid: ')


def test_typed_secrets_accept_their_keys(kube):
    """Real server: basic-auth needs only one of username/password; dockerconfigjson must
    hold a JSON object (``Invalid value: "<secret contents redacted>": ...`` otherwise)."""
    core = kube.core
    core.create_namespaced_secret(
        NAMESPACE,
        {"metadata": {"name": "ba"}, "type": "kubernetes.io/basic-auth", "data": {"password": ""}},
    )
    config = base64.b64encode(b'{"auths": {}}').decode()
    core.create_namespaced_secret(
        NAMESPACE,
        {
            "metadata": {"name": "dc"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": config},
        },
    )
    code, status = answer(
        core.create_namespaced_secret,
        NAMESPACE,
        {
            "metadata": {"name": "dc2"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(b"not json").decode()},
        },
    )
    assert code == 422
    cause = status["details"]["causes"][0]
    assert cause["field"] == "data[.dockerconfigjson]"
    assert cause["message"].startswith('Invalid value: "<secret contents redacted>": ')


def test_annotations_are_limited_to_256_kib_in_total(kube):
    """Real server (ValidateAnnotationsSize): 422 ``metadata.annotations: Too long: may not
    be more than 262144 bytes`` when keys plus values exceed 256 KiB."""
    half = "x" * (128 * 1024)
    body = {"metadata": {"name": "big", "annotations": {"a": half, "b": half}}}
    code, status = answer(kube.core.create_namespaced_secret, NAMESPACE, body)
    assert code == 422
    assert status["message"] == (
        'Secret "big" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes'
    )
    body["metadata"]["annotations"]["b"] = half[:-2]  # 262144 bytes: allowed
    kube.core.create_namespaced_secret(NAMESPACE, body)


def node_port_service(name, node_port=None, port=80, port_name="http"):
    spec_port = {"name": port_name, "port": port}
    if node_port:
        spec_port["nodePort"] = node_port
    return {
        "metadata": {"name": name},
        "spec": {"type": "NodePort", "selector": {"app": name}, "ports": [spec_port]},
    }


def test_node_port_range_and_clashes(kube):
    """Real server (the service node-port allocator): 422 ``Service "x" is invalid:
    spec.ports[0].nodePort: Invalid value: 40000: provided port is not in the valid range.
    The range of valid ports is 30000-32767``, and for a port another Service holds
    ``...: Invalid value: 31234: provided port is already allocated``."""
    core = kube.core
    code, status = answer(
        core.create_namespaced_service, NAMESPACE, node_port_service("out", 40000)
    )
    assert code == 422
    assert status["message"] == (
        'Service "out" is invalid: spec.ports[0].nodePort: Invalid value: 40000: provided port '
        "is not in the valid range. The range of valid ports is 30000-32767"
    )
    core.create_namespaced_service(NAMESPACE, node_port_service("first", 31234))
    code, status = answer(
        core.create_namespaced_service, NAMESPACE, node_port_service("second", 31234)
    )
    assert code == 422
    assert status["message"] == (
        'Service "second" is invalid: spec.ports[0].nodePort: Invalid value: 31234: provided '
        "port is already allocated"
    )
    auto = core.create_namespaced_service(NAMESPACE, node_port_service("auto"))
    assert auto.spec.ports[0].node_port not in (None, 31234)


def test_node_port_is_kept_when_the_port_number_changes(kube):
    """Real server (patchAllocatedValues): a port sent without a nodePort keeps the one the
    old port *of the same name* had, even with a new port number."""
    core = kube.core
    created = core.create_namespaced_service(NAMESPACE, node_port_service("np"))
    node_port = created.spec.ports[0].node_port
    patched = core.patch_namespaced_service(
        "np",
        NAMESPACE,
        {"spec": {"ports": [{"name": "http", "port": 8080}]}},
        _content_type="application/merge-patch+json",
    )
    assert (patched.spec.ports[0].port, patched.spec.ports[0].node_port) == (8080, node_port)


def test_service_name_may_start_with_a_digit(kube):
    """Real server 1.36 (RelaxedServiceNameValidation): Service names are DNS-1123 labels,
    so ``1st-model`` is created; ``1st.model`` still answers 422 ``metadata.name: Invalid
    value: "1st.model": a lowercase RFC 1123 label must consist of ...``."""
    core = kube.core
    svc = {"metadata": {"name": "1st-model"}, "spec": {"ports": [{"port": 80}]}}
    assert core.create_namespaced_service(NAMESPACE, svc).metadata.name == "1st-model"
    svc["metadata"]["name"] = "1st.model"
    code, status = answer(core.create_namespaced_service, NAMESPACE, svc)
    assert code == 422 and "a lowercase RFC 1123 label must consist of" in status["message"]


def test_new_deployment_stays_progressing_without_controllers(kube):
    """Real server without a controller manager: a created Deployment has an empty status
    (no observedGeneration, no ready replicas) and keeps it; nothing rolls it out."""
    created = kube.apps.create_namespaced_deployment(NAMESPACE, deployment("idle"))
    read = kube.get("deployments", "idle")
    assert created.status.observed_generation is None and created.status.ready_replicas is None
    assert read["status"] == {}
    from cpsign_airflow.kubernetes.manifests import deployment_status

    assert deployment_status(read) == "progressing"


def test_complete_rollout_plays_the_controller(kube, fake):
    """Fake-only control: write the status a finished rollout would have."""
    kube.apps.create_namespaced_deployment(NAMESPACE, deployment("rolled"))
    fake.complete_rollout(NAMESPACE, "rolled")
    from cpsign_airflow.kubernetes.manifests import deployment_status

    assert deployment_status(kube.get("deployments", "rolled")) == "ready"


def test_json_patch(kube):
    """Real server: ``application/json-patch+json`` (RFC 6902) is applied; a failed ``test``
    operation answers 422; the fake used to answer 415."""
    apps = kube.apps
    apps.create_namespaced_deployment(NAMESPACE, deployment("jp"))
    patched = apps.patch_namespaced_deployment(
        "jp",
        NAMESPACE,
        [
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels", "value": {"tier": "web"}},
        ],
        _content_type="application/json-patch+json",
    )
    assert (patched.spec.replicas, patched.metadata.labels) == (3, {"tier": "web"})
    code, _ = answer(
        apps.patch_namespaced_deployment,
        "jp",
        NAMESPACE,
        [{"op": "test", "path": "/spec/replicas", "value": 1}],
        _content_type="application/json-patch+json",
    )
    assert code == 422


def test_server_side_apply(kube):
    """Real server: ``application/apply-patch+yaml`` creates the object when missing and
    updates it otherwise; without ``fieldManager`` it answers 422 ``PatchOptions.meta.k8s.io
    "" is invalid: fieldManager: Required value: is required for apply patch``."""
    core = kube.core
    config = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "applied", "labels": {"a": "1"}},
        "stringData": {"k": "v"},
    }
    code, status = answer(
        core.patch_namespaced_secret,
        "applied",
        NAMESPACE,
        config,
        _content_type="application/apply-patch+yaml",
    )
    assert code == 422 and "fieldManager: Required value" in status["message"]
    created = core.patch_namespaced_secret(
        "applied",
        NAMESPACE,
        config,
        field_manager="cpsign-test",
        _content_type="application/apply-patch+yaml",
    )
    assert created.data == {"k": "dg=="}
    config["metadata"]["labels"] = {"a": "2"}
    updated = core.patch_namespaced_secret(
        "applied",
        NAMESPACE,
        config,
        field_manager="cpsign-test",
        _content_type="application/apply-patch+yaml",
    )
    assert updated.metadata.labels == {"a": "2"}
