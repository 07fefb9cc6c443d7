"""The compose stack, driven as a user would: the checks of ``make compose-test``.

Run by scripts/compose_test.sh once the stack is up and healthy (``--project``, ``--env-file``
and ``--compose`` say which stack and how to reach it). Through Airflow's REST API as the
admin user airflow-init generated: ``cpsign_setup`` (workflow FreeSolv) then
``cpsign_training`` with the form's defaults; then the model ``FreeSolv_acp.jar`` in the
commit set pachd made for that run, the bookkeeping row (``succeeded``, the model's sha256),
the models page, and a JWT signed with anything but the generated secret refused.
Exit 0 when all hold; 1 with the reason (and the failing tasks' logs) otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cpsign_airflow.testing.airflow_deployment import AirflowDeployment

WORKFLOW = "FreeSolv"
MODEL = f"{WORKFLOW}_acp.jar"


class Failed(Exception):
    """A check failed; the message says which and what was seen."""


def check(ok: object, message: str) -> None:
    if not ok:
        raise Failed(message)


class Stack:
    def __init__(self, project: str, env_file: Path, compose: list[str]) -> None:
        self.project = project
        self.env_file = env_file
        self.compose_cmd = compose
        self.env = dict(
            line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line
        )
        self.api_port = int(self.env["AIRFLOW_API_HOST_PORT"])
        self.db_port = int(self.env["CPSIGN_DB_HOST_PORT"])
        self.pachd_port = int(self.env["PACHD_HOST_PORT"])

    def compose(self, *args: str) -> str:
        cmd = [*self.compose_cmd, "-p", self.project, "--env-file", str(self.env_file), *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise Failed(f"{shlex.join(args)} exited {out.returncode}: {out.stderr[-2000:]}")
        return out.stdout

    def read(self, service: str, path: str) -> str:
        """A file inside a running service (the generated secrets never leave the stack
        otherwise; this test reads them as the README tells a user to)."""
        return self.compose("exec", "-T", service, "cat", path)


def airflow_client(stack: Stack) -> AirflowDeployment:
    """The REST helpers of the deployment test, pointed at the stack's API server."""
    passwords = json.loads(
        stack.read("airflow-apiserver", "/opt/airflow/auth/simple_auth_manager_passwords.json")
    )
    [(username, password)] = passwords.items()
    check(len(password) >= 16, "the generated admin password is short")
    client = AirflowDeployment.__new__(AirflowDeployment)
    client.base = f"http://127.0.0.1:{stack.api_port}"
    client.username, client.password = username, password
    client._token = None
    client._procs = {}
    return client


def run_dag(airflow: AirflowDeployment, dag_id: str, conf: dict[str, Any], timeout: float):
    start = time.monotonic()
    run_id = airflow.trigger(dag_id, conf)
    run = airflow.wait_for_run(dag_id, run_id, timeout=timeout)
    tis = airflow.task_instances(dag_id, run_id)
    took = time.monotonic() - start
    print(f"compose-e2e: {dag_id} {run_id}: {run['state']} in {took:.0f} s", flush=True)
    if run["state"] != "success":
        for task_id, ti in tis.items():
            if ti["state"] not in ("success", "skipped"):
                print(f"--- {task_id}: {ti['state']}", file=sys.stderr)
                try:
                    log = airflow.task_log(dag_id, run_id, ti["task_id"], ti["try_number"] or 1)
                    print(log[-4000:], file=sys.stderr)
                except urllib.error.HTTPError as err:
                    print(f"(no log: {err})", file=sys.stderr)
        raise Failed(
            f"{dag_id} {run_id} {run['state']}: {dict((k, v['state']) for k, v in tis.items())}"
        )
    return run_id


def model_in_pachd(stack: Stack, commit_set_id: str, location: str) -> tuple[list[str], bytes]:
    """Every path of the model in the run's commit set, and the content pachd serves at
    ``location`` (``repo@commit:path``, as bookkeeping records it)."""
    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pfs

    match = re.fullmatch(r"(?P<repo>[^@:]+)@(?P<commit>[0-9a-f]+):(?P<path>/.+)", location)
    check(match, f"the recorded location {location!r} is not repo@commit:path")
    token = stack.read("pachd", "/run/pachd-auth/token").strip()
    client = Client(host="127.0.0.1", port=stack.pachd_port, auth_token=token)
    try:
        found = []
        commits = list(client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=commit_set_id)))
        for info in commits:
            for file in client.pfs.walk_file(file=pfs.File(commit=info.commit, path="/")):
                if file.file.path.rsplit("/", 1)[-1] == MODEL:
                    found.append(
                        f"{file.file.commit.repo.name}@{file.file.commit.id}:{file.file.path}"
                    )
        check(
            any(
                c.commit.id == match["commit"] and c.commit.repo.name == match["repo"]
                for c in commits
            ),
            f"{location} is not in the run's commit set {commit_set_id}",
        )
        commit = pfs.Commit(id=match["commit"], repo=pfs.Repo(name=match["repo"], type="user"))
        with client.pfs.pfs_file(file=pfs.File(commit=commit, path=match["path"])) as src:
            content = src.read()
    finally:
        client._channel.close()
    return found, content


def status_of(url: str, token: str) -> int:
    """HTTP status of GET url with that bearer token, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def forged(token: str) -> str:
    """The admin's token, same header and claims, signed with another secret."""
    import jwt

    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    extra = {k: v for k, v in header.items() if k not in ("alg", "typ")}
    return jwt.encode(claims, "not-the-generated-secret-" + "x" * 40, algorithm=header["alg"],
                      headers=extra or None)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--env-file", type=Path, required=True)
    parser.add_argument("--compose", required=True, help="the Compose v2 command")
    parser.add_argument("--timeout", type=float, default=900, help="per DAG run, seconds")
    args = parser.parse_args(argv)
    stack = Stack(args.project, args.env_file, shlex.split(args.compose))
    try:
        airflow = airflow_client(stack)
        airflow.wait_healthy(300)
        run_dag(airflow, "cpsign_setup", {"workflow_name": WORKFLOW, "train_parallelism": 2},
                args.timeout)  # fmt: skip
        form = airflow.api("GET", "/api/v2/dags/cpsign_training/details")["params"]
        check(form["workflow_name"]["value"] == WORKFLOW, f"the form says {form['workflow_name']}")
        run_id = run_dag(airflow, "cpsign_training", {}, args.timeout)

        # The bookkeeping row, as the provider reads it.
        from cpsign_airflow.bookkeeping.ledger import TrainingLedger

        url = f"mysql://cpsign:cpsign@127.0.0.1:{stack.db_port}/cpsign"
        with TrainingLedger.from_url(url) as ledger:
            [record] = ledger.runs_for_airflow_run("cpsign_training", run_id)
            jobs = ledger.list_jobs(record.id)
            artifacts = ledger.list_artifacts(record.id)
        check(record.status == "succeeded", f"the run is recorded {record.status!r}")
        check(
            len(jobs) == 6 and all(j.state == "JOB_SUCCESS" for j in jobs),
            f"jobs {[(j.pipeline, j.state) for j in jobs]}",
        )
        models = [a for a in artifacts if a.model_name == MODEL or a.location.endswith(MODEL)]
        check(
            len(models) == 1,
            f"artifacts recorded: {[(a.model_name, a.location) for a in artifacts]}",
        )
        [model] = models
        check(model.quality == "passed", f"model quality {model.quality!r}: {model.quality_reason}")

        # The model pachd holds for that run: the bytes the row's sha256 names.
        found, content = model_in_pachd(stack, record.commit_set_id, model.location)
        digest = hashlib.sha256(content).hexdigest()
        where = model.location
        check(digest == model.sha256, f"{where} has sha256 {digest}, recorded {model.sha256}")
        check(
            len(content) == model.size_bytes,
            f"{where}: {len(content)} bytes, recorded {model.size_bytes}",
        )
        print(f"compose-e2e: {where}: {len(content)} bytes, sha256 {digest}, recorded "
              f"{record.status} (run {record.id}, quality {model.quality})")  # fmt: skip
        print(f"compose-e2e: {MODEL} in the commit set: {found}")

        # The models page answers, with the workflow and its model.
        token = airflow.token()
        page = f"{airflow.base}/cpsign-models/workflows/{WORKFLOW}"
        request = urllib.request.Request(page, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            html = response.read().decode()
        check(
            response.status == 200 and model.model_name in html and model.sha256 in html,
            f"{page}: {response.status}, without {model.model_name} and its sha256",
        )
        print(f"compose-e2e: models page {page}: 200, shows {model.model_name} {model.sha256}")

        # A JWT signed with anything but the generated secret is refused, by the API and
        # the models page; the real one is taken.
        dags = f"{airflow.base}/api/v2/dags"
        check(status_of(dags, token) == 200, "the admin's own token was refused")
        bad = forged(token)
        for url in (dags, page):
            code = status_of(url, bad)
            check(code in (401, 403), f"{url} answered {code} to a JWT with another secret")
        print("compose-e2e: a JWT signed with another secret: refused (401/403)")
    except Failed as exc:
        print(f"compose-e2e: FAILED: {exc}", file=sys.stderr)
        return 1
    print("compose-e2e: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
