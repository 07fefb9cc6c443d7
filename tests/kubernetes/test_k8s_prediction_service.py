"""CPSign prediction services: Deployment + Service created, rolled, left alone."""

from __future__ import annotations

import base64

import pytest
from conftest import NAMESPACE
from dag_runner import run_dag, write_dag

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


def deployment(fake, name="logd-full-split"):
    return fake.get_object("deployments", NAMESPACE, name)


def test_create_then_unchanged_then_roll(kube_conn, fake):
    first = operator().execute({})
    assert first == {
        "deployment": "logd-full-split",
        "service": "logd-full-split",
        "namespace": NAMESPACE,
        "url": "http://logd-full-split.pachyderm.svc.cluster.local",
        "model_version": V1,
        "model_location": f"LogD-aggregate@master={V1}:/models/LogD.jar",
        "image": "ghcr.io/arosbio/cpsign-cp-reg-server:latest",
        "action": "created",
        "status": "ready",
        "generation": 1,
    }
    dep = deployment(fake)
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
            f"http://pachd.pachyderm.svc.cluster.local:30600/{V1}.master.LogD-aggregate.default/models/LogD.jar"
        ),
    } in fetch["env"]
    assert "--aws-sigv4" in fetch["command"][-1]
    labels = dep["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "cpsign-airflow"
    assert labels["cpsign-airflow/model-version"] == V1
    assert dep["spec"]["template"]["metadata"]["labels"]["cpsign-airflow/model-version"] == V1
    svc = fake.get_object("services", NAMESPACE, "logd-full-split")
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["port"] == 80
    versions = (dep["metadata"]["resourceVersion"], svc["metadata"]["resourceVersion"])

    # Same model version and settings: only reads, nothing changes.
    calls_before = len(fake.calls)
    again = operator().execute({})
    assert (again["action"], again["generation"]) == ("unchanged", 1)
    assert {c.verb for c in fake.calls[calls_before:]} == {"get"}
    svc = fake.get_object("services", NAMESPACE, "logd-full-split")
    assert (
        deployment(fake)["metadata"]["resourceVersion"],
        svc["metadata"]["resourceVersion"],
    ) == versions

    # A new model version rolls the Deployment (new generation, new pod template).
    rolled = operator(commit=V2).execute({})
    assert (rolled["action"], rolled["model_version"], rolled["generation"]) == ("rolled", V2, 2)
    dep = deployment(fake)
    assert dep["metadata"]["generation"] == 2
    assert dep["spec"]["template"]["metadata"]["labels"]["cpsign-airflow/model-version"] == V2
    env = dep["spec"]["template"]["spec"]["initContainers"][0]["env"]
    assert V2 in env[0]["value"] and V1 not in env[0]["value"]
    assert (
        fake.get_object("services", NAMESPACE, "logd-full-split")["metadata"]["resourceVersion"]
        == versions[1]
    )

    # Settings change with the same version: patched in place, reported as updated.
    scaled = operator(commit=V2, replicas=2).execute({})
    assert (scaled["action"], scaled["generation"]) == ("updated", 3)
    assert deployment(fake)["spec"]["replicas"] == 2
    patches = [c for c in fake.calls if c.verb == "patch"]
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


def test_image_override_url_source_and_token_secret(kube_conn, fake):
    with pytest.raises(errors.MissingPipelineSecrets, match="'pachd-reader' with key 'auth-token'"):
        operator(pachyderm_token_secret="pachd-reader").execute({})
    assert fake.get_object("deployments", NAMESPACE, "logd-full-split") is None
    fake.put_object(
        "secrets",
        {
            "metadata": {"name": "pachd-reader", "namespace": NAMESPACE},
            "data": {"auth-token": base64.b64encode(b"robot-token").decode()},
        },
    )
    operator(
        pachyderm_token_secret="pachd-reader", image="registry.local/cpsign-reg:2.0.0"
    ).execute({})
    pod = deployment(fake)["spec"]["template"]["spec"]
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
    assert result["url"] == "http://herg.pachyderm.svc.cluster.local:8080"
    fetch = deployment(fake, "herg")["spec"]["template"]["spec"]["initContainers"][0]
    assert "--aws-sigv4" not in fetch["command"][-1]


def test_refuses_unmanaged_objects(kube_conn, fake):
    fake.put_object(
        "services",
        {
            "metadata": {"name": "logd-full-split", "namespace": NAMESPACE},
            "spec": {"selector": {"app": "other"}, "ports": [{"port": 80}]},
        },
    )
    with pytest.raises(errors.ObjectNotManaged, match="service pachyderm/logd-full-split exists"):
        operator().execute({})
    assert fake.get_object("services", NAMESPACE, "logd-full-split")["spec"]["selector"] == {
        "app": "other"
    }


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


def test_wait_for_ready(kube_conn, fake):
    fake.auto_ready = False
    with pytest.raises(errors.KubernetesError, match="not ready after 0s .*status progressing"):
        operator(wait_for_ready=True, ready_timeout=0).execute({})
    fake.auto_ready = True
    result = operator(commit=V2, wait_for_ready=True, ready_timeout=0).execute({})
    assert (result["action"], result["status"]) == ("rolled", "ready")


def test_deploys_inside_a_dag_run(airflow_db, kube_conn, fake):
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
    assert out["url"] == "http://herg.pachyderm.svc.cluster.local"


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


def test_init_container_fetches_from_s3_gateway_with_the_token(kube_conn, fake, tmp_path):
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
        fake.put_object(
            "secrets",
            {
                "metadata": {"name": "reader", "namespace": NAMESPACE},
                "data": {"auth-token": base64.b64encode(b"robot-token").decode()},
            },
        )
        operator(
            pachyderm_token_secret="reader",
            s3_gateway_url=f"http://127.0.0.1:{server.server_address[1]}",
        ).execute({})
        init = deployment(fake)["spec"]["template"]["spec"]["initContainers"][0]
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
