"""CPSign prediction services: Deployment + Service created, rolled, left alone."""

from __future__ import annotations

import base64
import threading

import pytest
from dag_runner import load_dag, run_dag, write_dag
from kube_target import NAMESPACE

from cpsign_airflow.kubernetes import errors, manifests
from cpsign_airflow.kubernetes.manifests import ModelLocation
from cpsign_airflow.kubernetes.operators import CPSignPredictionServiceOperator

V1 = "a" * 32
V2 = "b" * 32


def operator(commit=V1, **kwargs):
    kwargs.setdefault("predictor_type", 2)
    return CPSignPredictionServiceOperator(
        task_id="deploy",
        namespace=NAMESPACE,
        model_name="LogD_full_split",
        model_location=f"LogD-aggregate@{commit}:/models/LogD.jar",
        **kwargs,
    )


def deployment(kube, name="logd-full-split"):
    return kube.get("deployments", name)


def reader_secret(kube, name="pachd-reader"):
    kube.create(
        "secrets",
        {
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {"auth-token": base64.b64encode(b"robot-token").decode()},
        },
    )


def test_create_then_unchanged_then_roll(kube_conn, kube):
    first = operator().execute({})
    assert first == {
        "deployment": "logd-full-split",
        "service": "logd-full-split",
        "namespace": NAMESPACE,
        "url": f"http://logd-full-split.{NAMESPACE}.svc.cluster.local",
        "model_version": V1,
        "model_location": f"LogD-aggregate@master={V1}:/models/LogD.jar",
        "image": "ghcr.io/arosbio/cpsign-cp-reg-server:latest",
        "action": "created",
        # No deployment controller has looked at it yet (none runs beside a bare API
        # server, and a real cluster's takes a moment): the rollout is in progress.
        "status": "progressing",
        "generation": 1,
    }
    dep = deployment(kube)
    pod = dep["spec"]["template"]["spec"]
    server = pod["containers"][0]
    assert server["image"] == "ghcr.io/arosbio/cpsign-cp-reg-server:latest"
    assert {"name": "MODEL_FILE", "value": "/var/lib/jetty/model.jar"} in server["env"]
    assert server["volumeMounts"][0]["mountPath"] == "/var/lib/jetty/model.jar"
    assert server["readinessProbe"]["httpGet"] == {"path": "/api/v2/health", "port": "http"}
    fetch = pod["initContainers"][0]
    assert {
        "name": "MODEL_SOURCE_URL",
        "value": (
            f"http://pachd.{NAMESPACE}.svc.cluster.local:30600/{V1}.master.LogD-aggregate.default/models/LogD.jar"
        ),
    } in fetch["env"]
    assert "--aws-sigv4" in fetch["command"][-1]
    labels = dep["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "cpsign-airflow"
    assert labels["cpsign-airflow/model-version"] == V1
    assert dep["spec"]["template"]["metadata"]["labels"]["cpsign-airflow/model-version"] == V1
    svc = kube.get("services", "logd-full-split")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["port"] == 80
    versions = (dep["metadata"]["resourceVersion"], svc["metadata"]["resourceVersion"])

    # Same model version and settings: only reads, nothing changes.
    calls_before = len(kube.fake.calls) if kube.fake else 0
    again = operator().execute({})
    assert (again["action"], again["generation"]) == ("unchanged", 1)
    if kube.fake:
        assert {c.verb for c in kube.fake.calls[calls_before:]} == {"get"}
    svc = kube.get("services", "logd-full-split")
    assert (
        deployment(kube)["metadata"]["resourceVersion"],
        svc["metadata"]["resourceVersion"],
    ) == versions

    # A new model version rolls the Deployment (new generation, new pod template).
    rolled = operator(commit=V2).execute({})
    assert (rolled["action"], rolled["model_version"], rolled["generation"]) == ("rolled", V2, 2)
    dep = deployment(kube)
    assert dep["metadata"]["generation"] == 2
    assert dep["spec"]["template"]["metadata"]["labels"]["cpsign-airflow/model-version"] == V2
    env = dep["spec"]["template"]["spec"]["initContainers"][0]["env"]
    assert V2 in env[0]["value"] and V1 not in env[0]["value"]
    assert kube.get("services", "logd-full-split")["metadata"]["resourceVersion"] == versions[1]

    # Settings change with the same version: patched in place, reported as updated.
    scaled = operator(commit=V2, replicas=2).execute({})
    assert (scaled["action"], scaled["generation"]) == ("updated", 3)
    assert deployment(kube)["spec"]["replicas"] == 2
    if kube.fake:
        patches = [c for c in kube.fake.calls if c.verb == "patch"]
        assert [(c.resource, c.code) for c in patches] == [("deployments", 200)] * 2


@pytest.mark.parametrize(
    ("ptype", "image"),
    [
        (1, "cpsign-cp-clf-server"),
        ("2", "cpsign-cp-reg-server"),
        (3, "cpsign-cp-clf-server"),
        (5, "cpsign-vap-clf-server"),
        ("vap", "cpsign-vap-clf-server"),
    ],
)
def test_image_follows_predictor_type(ptype, image):
    assert f"ghcr.io/arosbio/{image}" == manifests.SERVER_IMAGES[manifests.server_kind(ptype)]


def test_bad_inputs():
    with pytest.raises(ValueError, match="ptype 1, 2, 3 or 5"):
        manifests.server_kind(4)
    with pytest.raises(ValueError, match="is not a commit id"):
        ModelLocation.parse("LogD-aggregate@master:/model.jar")
    loc = ModelLocation.parse(f"proj/LogD-aggregate@dev={V1}:/m/x.jar")
    assert (loc.project, loc.branch, loc.s3_bucket, loc.s3_key) == (
        "proj",
        "dev",
        f"{V1}.dev.LogD-aggregate.proj",
        "m/x.jar",
    )
    assert manifests.service_name_for("1st LogD model!") == "cpsign-1st-logd-model"
    with pytest.raises(ValueError, match="exactly one of model_location or model_url"):
        CPSignPredictionServiceOperator(
            task_id="x", namespace="n", model_name="m", predictor_type=1
        )


def test_image_override_url_source_and_token_secret(kube_conn, kube):
    with pytest.raises(errors.MissingPipelineSecrets, match="'pachd-reader' with key 'auth-token'"):
        operator(pachyderm_token_secret="pachd-reader").execute({})
    assert deployment(kube) is None
    reader_secret(kube)
    operator(
        pachyderm_token_secret="pachd-reader", image="registry.local/cpsign-reg:2.0.0"
    ).execute({})
    pod = deployment(kube)["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.local/cpsign-reg:2.0.0"
    token_env = pod["initContainers"][0]["env"][1]
    assert token_env == {
        "name": "PACH_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "pachd-reader", "key": "auth-token"}},
    }
    assert "robot-token" not in str(pod)

    result = CPSignPredictionServiceOperator(
        task_id="u",
        namespace=NAMESPACE,
        model_name="hERG",
        predictor_type=1,
        model_url="https://models.example.org/herg.jar",
        model_version="herg-7",
        service_port=8080,
    ).execute({})
    assert result["url"] == f"http://herg.{NAMESPACE}.svc.cluster.local:8080"
    fetch = deployment(kube, "herg")["spec"]["template"]["spec"]["initContainers"][0]
    assert "--aws-sigv4" not in fetch["command"][-1]


def test_refuses_unmanaged_objects(kube_conn, kube):
    kube.create(
        "services",
        {
            "metadata": {"name": "logd-full-split", "namespace": NAMESPACE},
            "spec": {"selector": {"app": "other"}, "ports": [{"port": 80}]},
        },
    )
    with pytest.raises(
        errors.ObjectNotManaged, match=f"service {NAMESPACE}/logd-full-split exists"
    ):
        operator().execute({})
    assert kube.get("services", "logd-full-split")["spec"]["selector"] == {"app": "other"}


def unmanaged_deployment(kube, labels):
    return kube.create(
        "deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "logd-full-split", "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        },
    )


def test_takeover_of_a_deployment_with_another_selector_is_refused(kube_conn, kube):
    """A Deployment's selector is immutable: a real API server answers 422 ``spec.selector:
    Invalid value: ...: field is immutable`` to the merge patch, so takeover refuses first,
    naming both selectors, and writes nothing."""
    before = unmanaged_deployment(kube, {"app": "other"})
    with pytest.raises(errors.ObjectNotManaged) as exc:
        operator(allow_takeover=True).execute({})
    message = str(exc.value)
    assert f"deployment {NAMESPACE}/logd-full-split exists with selector {{app=other}}" in message
    assert (
        "needs selector {app.kubernetes.io/instance=logd-full-split,"
        "app.kubernetes.io/name=cpsign-prediction-service}" in message
    )
    assert "selector is immutable" in message and "kubectl delete deployment" in message
    after = deployment(kube)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert kube.get("services", "logd-full-split") is None


def test_takeover_of_a_deployment_with_the_same_selector(kube_conn, kube):
    selector = {
        "app.kubernetes.io/name": "cpsign-prediction-service",
        "app.kubernetes.io/instance": "logd-full-split",
    }
    unmanaged_deployment(kube, selector)
    with pytest.raises(errors.ObjectNotManaged, match="not managed by cpsign-airflow"):
        operator().execute({})
    adopted = operator(allow_takeover=True).execute({})
    assert adopted["action"] == "rolled"
    dep = deployment(kube)
    assert dep["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "cpsign-airflow"
    assert [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]] == ["cpsign-server"]


def test_rbac_denial_on_deployments(kube_conn, fake):
    fake.deny("create", "deployments", NAMESPACE)
    with pytest.raises(errors.KubernetesForbidden) as exc:
        operator().execute({})
    message = str(exc.value)
    assert message.startswith(
        "create deployment pachyderm/logd-full-split: deployments.apps is forbidden"
    )
    assert (
        'cannot create resource "deployments" in API group "apps" in the namespace "pachyderm"'
        in message
    )
    assert "deploy/rbac.yaml" in message


def test_wait_for_ready_gives_up_after_its_timeout(kube_conn, kube):
    """Nothing rolls the Deployment out (a bare API server has no controllers; a real
    server leaves its status empty): the wait ends at ready_timeout, it never hangs."""
    with pytest.raises(errors.KubernetesError, match="not ready after 0s .*status progressing"):
        operator(wait_for_ready=True, ready_timeout=0).execute({})
    assert deployment(kube)["status"].get("observedGeneration") is None


def test_wait_for_ready_returns_once_the_rollout_finished(kube_conn, kube, fake):
    """The fake plays the deployment controller (``complete_rollout``) while the task polls."""
    operator().execute({})
    done = threading.Event()

    def controller():
        while not done.wait(0.05):
            dep = fake.get_object("deployments", NAMESPACE, "logd-full-split", group="apps")
            if dep["metadata"]["generation"] == 2:
                fake.complete_rollout(NAMESPACE, "logd-full-split")
                return

    thread = threading.Thread(target=controller, daemon=True)
    thread.start()
    try:
        result = operator(
            commit=V2, wait_for_ready=True, ready_timeout=30, poll_interval=0.05
        ).execute({})
    finally:
        done.set()
        thread.join()
    assert (result["action"], result["status"], result["generation"]) == ("rolled", "ready", 2)
    fake.auto_ready = True  # the other fake-only control: every spec change rolls out at once
    scaled = operator(commit=V2, replicas=3, wait_for_ready=True, ready_timeout=0).execute({})
    assert (scaled["action"], scaled["status"]) == ("updated", "ready")


def test_deploys_inside_a_dag_run(airflow_db, kube_conn, kube):
    source = f"""
    import datetime
    from airflow.sdk import DAG
    from cpsign_airflow.kubernetes.operators import CPSignPredictionServiceOperator

    with DAG("k8s_predict", schedule=None, start_date=datetime.datetime(2024, 1, 1),
             params={{"commit": "{V1}", "ptype": 5}}) as dag:
        CPSignPredictionServiceOperator(
            task_id="deploy",
            namespace="{NAMESPACE}",
            model_name="hERG",
            predictor_type="{{{{ params.ptype }}}}",
            model_location="hERG-aggregate@{{{{ params.commit }}}}:/model.jar",
        )
    """
    path = write_dag(airflow_db / "dags", "k8s_predict", source)
    result = run_dag(path, "k8s_predict")
    assert result.state == "success", result.task_states
    out = result.xcom["deploy"]
    assert (out["action"], out["model_version"], out["image"]) == (
        "created",
        V1,
        "ghcr.io/arosbio/cpsign-vap-clf-server:latest",
    )
    assert out["url"] == f"http://herg.{NAMESPACE}.svc.cluster.local"


def test_container_resources_inside_a_dag_run(airflow_db, kube_conn, kube):
    """``container_resources`` reaches the server container; Airflow's own ``resources``
    argument keeps its meaning (executor resources) beside it."""
    source = f"""
    import datetime
    from airflow.sdk import DAG
    from cpsign_airflow.kubernetes.operators import CPSignPredictionServiceOperator

    with DAG("k8s_predict_resources", schedule=None, start_date=datetime.datetime(2024, 1, 1),
             default_args={{"retries": 0}}) as dag:
        CPSignPredictionServiceOperator(
            task_id="deploy",
            namespace="{NAMESPACE}",
            model_name="hERG",
            predictor_type=1,
            model_location="hERG-aggregate@{V1}:/model.jar",
            container_resources={{
                "requests": {{"cpu": "250m", "memory": "512Mi"}},
                "limits": {{"memory": "1Gi", "ephemeral-storage": "2Gi"}},
            }},
            resources={{"cpus": 2}},
        )
    """
    path = write_dag(airflow_db / "dags", "k8s_predict_resources", source)
    assert load_dag(path, "k8s_predict_resources").get_task("deploy").resources.cpus.qty == 2
    result = run_dag(path, "k8s_predict_resources")
    assert result.state == "success", result.task_states
    assert result.xcom["deploy"]["action"] == "created"
    server = deployment(kube, "herg")["spec"]["template"]["spec"]["containers"][0]
    assert server["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "1Gi", "ephemeral-storage": "2Gi"},
    }
    # Changed resources patch the Deployment in place.
    again = operator(container_resources={"requests": {"cpu": "1"}}).execute({})
    assert again["action"] == "created"  # another service (logd-full-split)
    changed = operator(container_resources={"requests": {"cpu": "2"}}).execute({})
    assert changed["action"] == "updated"
    assert deployment(kube)["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "2"}
    }


def test_kubernetes_resources_given_as_airflow_resources_fail_clearly():
    """``resources`` is BaseOperator's own argument: a Kubernetes-style dict there used to
    fail deep inside Airflow ("Resources.__init__() got an unexpected keyword argument
    'limits'")."""
    with pytest.raises(TypeError) as exc:
        operator(resources={"limits": {"cpu": "1"}})
    message = str(exc.value)
    assert message.startswith("deploy: 'resources' is Airflow's own operator argument")
    assert "got keys 'limits'" in message and "container_resources=" in message


@pytest.mark.parametrize(
    ("resources", "match"),
    [
        ({"limit": {"cpu": "1"}}, "unknown key 'limit': only 'limits' and 'requests'"),
        ({"requests": {"cpus": "1"}}, "requests: unknown resource 'cpus'"),
        ({"limits": {"cpu": "1 core"}}, r"limits.cpu: '1 core' is not a Kubernetes quantity"),
        ({"limits": {"memory": "1GB"}}, r"limits.memory: '1GB' is not a Kubernetes quantity"),
        ({"limits": {"memory": True}}, r"limits.memory: True is not a Kubernetes quantity"),
        ({"claims": [{"name": "gpu"}]}, "'claims' .* needs pod-level resourceClaims"),
        ({"requests": "1"}, "'requests' must map resource names to quantities"),
        (["limits"], "expected a dict"),
    ],
)
def test_container_resources_refused_before_any_request(kube_conn, kube, resources, match):
    """A real API server drops an unknown field with only a ``Warning`` header
    (``unknown field "spec.template.spec.containers[0].resources.limit"``), so
    ``{"limit": ...}`` would deploy with no limits; bad names and quantities are refused
    here too, naming the key, before anything is sent."""
    from cpsign_airflow.kubernetes.client import KubeClient
    from cpsign_airflow.kubernetes.prediction import (
        PredictionServiceSpec,
        ensure_prediction_service,
    )

    with pytest.raises(errors.KubernetesInvalid, match=match):
        operator(container_resources=resources)
    with pytest.raises(errors.KubernetesInvalid, match=match):
        ensure_prediction_service(
            KubeClient(kube_conn),
            PredictionServiceSpec(
                namespace=NAMESPACE,
                model_name="m",
                predictor_type=1,
                model_url="https://example.org/m.jar",
                model_version="v1",
                container_resources=resources,
            ),
        )
    if kube.fake:
        assert kube.fake.calls == []
    assert deployment(kube, "m") is None


def test_valid_container_resources():
    from cpsign_airflow.kubernetes.manifests import validate_container_resources

    valid = {
        "requests": {"cpu": 0.5, "memory": "512Mi", "nvidia.com/gpu": 1, "hugepages-2Mi": "1Gi"},
        "limits": {"cpu": "1.5", "memory": "1e9", "ephemeral-storage": "10G"},
    }
    assert validate_container_resources(valid) == valid
    assert validate_container_resources(None) == {}


def test_invalid_answers_map_to_kubernetes_invalid(kube_conn, kube):
    """Bodies that do not decode: a real API server answers 400 BadRequest (``Secret in
    version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3``,
    ``Deployment in version "v1" cannot be handled as a Deployment: quantities must match
    the regular expression ...``) on create, and 422 ``patch: Invalid value`` on a merge
    patch; validation failures are 422. All are ``KubernetesInvalid``."""
    from cpsign_airflow.kubernetes.client import KubeClient

    client = KubeClient(kube_conn)
    with pytest.raises(errors.KubernetesInvalid) as exc:
        client.create(
            "secrets",
            NAMESPACE,
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "no!"}},
        )
    assert exc.value.code == 400 and exc.value.reason == "BadRequest"
    assert "cannot be handled as a Secret: illegal base64 data at input byte" in str(exc.value)

    operator().execute({})
    dep = deployment(kube)
    dep["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1 core"}}
    dep["metadata"] = {"name": "other"}
    dep.pop("status", None)
    with pytest.raises(errors.KubernetesInvalid) as exc:
        client.create("deployments", NAMESPACE, dep)
    assert exc.value.code == 400
    assert (
        "cannot be handled as a Deployment: quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'" in str(exc.value)
    )
    bad = {"limits": {"memory": "lots"}}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "y"}]}}}}
    patch["spec"]["template"]["spec"]["containers"][0]["resources"] = bad
    with pytest.raises(errors.KubernetesInvalid) as exc:
        client.merge_patch("deployments", NAMESPACE, "logd-full-split", patch)
    assert exc.value.code == 422 and "patch: Invalid value" in str(exc.value)
    with pytest.raises(errors.KubernetesInvalid) as exc:
        client.merge_patch("deployments", NAMESPACE, "logd-full-split", {"spec": {"replicas": -1}})
    assert exc.value.code == 422 and "spec.replicas" in str(exc.value)


def _sigv4_valid(headers, path: str, secret: str) -> bool:
    """Verify an AWS signature v4 (S3, GET, no query) as pachd's S3 gateway would."""
    import hashlib
    import hmac

    auth = headers["Authorization"]
    fields = dict(part.strip().split("=", 1) for part in auth.split(" ", 1)[1].split(","))
    _, date, region, service, _ = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    canonical_headers = "".join(f"{h}:{headers[h].strip()}\n" for h in signed)
    canonical = "\n".join(
        ["GET", path, "", canonical_headers, ";".join(signed), headers["x-amz-content-sha256"]]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            headers["x-amz-date"],
            f"{date}/{region}/{service}/aws4_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["Signature"])


def test_init_container_fetches_from_s3_gateway_with_the_token(kube_conn, kube, tmp_path):
    """Run the init container's command (curl + sh, as in curlimages/curl) against a
    loopback stand-in for pachd's S3 gateway that checks the signature like the gateway."""
    import http.server
    import os
    import shutil
    import subprocess
    import threading

    curl = shutil.which("curl")
    if (
        not curl
        or "aws-sigv4"
        not in subprocess.run([curl, "--help", "all"], capture_output=True, text=True).stdout
    ):
        pytest.skip("needs curl >= 7.75 (--aws-sigv4), as in the curlimages/curl init image")
    seen = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = "Authorization" in self.headers and _sigv4_valid(
                self.headers, self.path, "robot-token"
            )
            seen.append((self.path, self.headers.get("Authorization", ""), ok))
            body = b"PK-model-jar" if ok else b"<Error><Code>AccessDenied</Code></Error>"
            self.send_response(200 if ok else 403)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        reader_secret(kube, "reader")
        operator(
            pachyderm_token_secret="reader",
            s3_gateway_url=f"http://127.0.0.1:{server.server_address[1]}",
        ).execute({})
        init = deployment(kube)["spec"]["template"]["spec"]["initContainers"][0]
        script = init["command"][-1].replace("/model/", f"{tmp_path}/")
        env = {e["name"]: e.get("value") for e in init["env"]}
        env["PACH_TOKEN"] = "robot-token"  # what the secretKeyRef provides in the pod
        run = lambda token: subprocess.run(  # noqa: E731
            ["sh", "-c", script],
            env={**os.environ, **env, "PACH_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=60,
        )
        done = run("robot-token")
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "model.jar").read_bytes() == b"PK-model-jar"
        path, auth, ok = seen[-1]
        assert ok and path == f"/{V1}.master.LogD-aggregate.default/models/LogD.jar"
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=robot-token/")
        assert "robot-token" not in done.stdout + done.stderr
        (tmp_path / "model.jar").unlink()
        refused = run("wrong-token")
        assert refused.returncode != 0 and not (tmp_path / "model.jar").exists()
        assert seen[-1][2] is False
    finally:
        server.shutdown()
        server.server_close()


def test_the_operator_takes_the_service_spec_parameters_with_its_defaults():
    """PredictionServiceSpec carries the prediction service's parameters; the operator's
    keywords (which Airflow reads from its signature) are exactly those, with its defaults."""
    import dataclasses
    import inspect

    from cpsign_airflow.kubernetes.prediction import PredictionServiceSpec

    signature = inspect.signature(CPSignPredictionServiceOperator.__init__).parameters
    taken = {
        name: p.default
        for name, p in signature.items()
        if name not in ("self", "kwargs", "kubernetes_conn_id")
    }
    fields = {
        f.name: inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        for f in dataclasses.fields(PredictionServiceSpec)
    }
    assert taken == fields
