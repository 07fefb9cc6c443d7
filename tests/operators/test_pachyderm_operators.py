"""Operators and the commit-set sensor inside real Airflow DAG runs (dag.test)."""

from __future__ import annotations

import json

import pytest
from dag_runner import run_dag, write_dag

from cpsign_airflow.hooks.pachyderm import PachydermHook

SPEC_TEMPLATE = {
    "pipeline": {"name": "{{ workflow_name }}-stage1"},
    "input": {"pfs": {"repo": "{{ workflow_name }}-config", "glob": "/"}},
    "transform": {
        "image": "busybox:{{ image_tag }}",
        "cmd": [
            "sh",
            "-c",
            'for d in /pfs/*; do [ "$d" = /pfs/out ] || cp -r "$d"/. /pfs/out/; done',
        ],
    },
    "parallelism_spec": {"constant": 1},
}
# Pachyderm 1.x form, as the original workflow's specs were written.
V1_SPEC = {
    "pipeline": {"name": "{{ workflow_name }}-stage2"},
    "input": {"atom": {"repo": "{{ workflow_name }}-stage1", "glob": "/*"}},
    "transform": {
        "image": "busybox",
        "cmd": ["sh"],
        "stdin": ['for d in /pfs/*; do [ "$d" = /pfs/out ] || cp -r "$d"/. /pfs/out/; done'],
    },
    "standby": True,
}

DAG_SOURCE = """
import datetime
from airflow.sdk import DAG
from cpsign_airflow.operators.pachyderm import (
    PachydermCreatePipelineOperator,
    PachydermCreateRepoOperator,
    PachydermPutFileOperator,
)
from cpsign_airflow.sensors.pachyderm import PachydermCommitSetSensor

with DAG("{dag_id}", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False) as dag:
    repo = PachydermCreateRepoOperator(task_id="repo", repo="{wf}-config")
    pipelines = PachydermCreatePipelineOperator(
        task_id="pipelines",
        specs={specs!r},
        spec_vars={{"workflow_name": "{wf}", "image_tag": "{{{{ params.tag }}}}"}},
        params={{"tag": "1.36"}},
    )
    put = PachydermPutFileOperator(
        task_id="put_config",
        repo="{wf}-config",
        path="/configuration.json",
        content={{"workflow_name": "{wf}", "seed": "{{{{ run_id }}}}"}},
    )
    wait = PachydermCommitSetSensor(
        task_id="wait",
        commit_set_id="{{{{ ti.xcom_pull(task_ids='put_config') }}}}",
        deferrable={deferrable},
        poke_interval=0.2,
        timeout=120,
        retries=0,
    )
    repo >> pipelines >> put >> wait
"""

#: Seconds a stage runs in the deferred variants: longer than put_config -> wait takes.
DEFER_DURATION = 2.0


@pytest.fixture
def spec_dir(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "stage1.json").write_text(json.dumps(SPEC_TEMPLATE))
    (folder / "stage2.yaml").write_text(json.dumps(V1_SPEC))
    return folder


def make_dag(airflow_db, name, wf, specs, deferrable=False):
    source = DAG_SOURCE.format(dag_id=name, wf=wf, specs=specs, deferrable=deferrable)
    return write_dag(airflow_db / "dags", name, source)


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferred"])
def test_training_chain_runs_end_to_end(
    airflow_db, pachyderm_conn, pachd, spec_dir, unique_name, deferrable
):
    wf = unique_name
    if deferrable:  # still running when the sensor starts, so that it really defers
        pachd.configure_pipeline(f"{wf}-stage2", duration=DEFER_DURATION)
    path = make_dag(airflow_db, f"ops_{wf.replace('-', '_')}", wf, str(spec_dir), deferrable)
    result = run_dag(path, path.stem)
    assert result.state == "success", result.task_states
    assert result.xcom["repo"] == {"project": "default", "repo": f"{wf}-config", "created": True}
    actions = {r["pipeline"]: r["action"] for r in result.xcom["pipelines"]}
    assert actions == {f"{wf}-stage1": "created", f"{wf}-stage2": "created"}
    commit = result.xcom["put_config"]
    jobs = {j["pipeline"]: j for j in result.xcom["wait"]}
    assert set(jobs) == {f"{wf}-stage1", f"{wf}-stage2"}
    assert all(j["state"] == "JOB_SUCCESS" and j["job_id"] == commit for j in jobs.values())
    assert all(j["duration_seconds"] is not None for j in jobs.values())
    hook = PachydermHook(pachyderm_conn)
    stored = hook.inspect_pipeline(f"{wf}-stage1")["user_spec"]
    assert stored["transform"]["image"] == "busybox:1.36"  # spec template rendered with params
    written = json.loads(hook.read_file(f"{wf}-config", commit, "/configuration.json"))
    assert written == {"workflow_name": wf, "seed": result.run_id}
    description = hook.inspect_commit(f"{wf}-config", commit)["description"]
    assert f"run_id={result.run_id}" in description and "try=1" in description

    # The same specs again: every pipeline unchanged, no new spec commit or job.
    second = run_dag(path, path.stem)
    assert {r["action"] for r in second.xcom["pipelines"]} == {"unchanged"}


def test_put_file_retried_three_times_commits_once(
    airflow_db, pachyderm_conn, pachd, unique_name, capfd
):
    import datetime

    wf = unique_name
    source = f"""
    import datetime
    from airflow.sdk import DAG
    from cpsign_airflow.operators.pachyderm import PachydermCreateRepoOperator, PachydermPutFileOperator

    with DAG("{wf.replace("-", "_")}", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
        PachydermCreateRepoOperator(task_id="repo", repo="{wf}") >> PachydermPutFileOperator(
            task_id="put_config", repo="{wf}", path="/configuration.json", content={{"a": 1}}
        )
    """
    path = write_dag(airflow_db / "dags", wf.replace("-", "_"), source)
    when = datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone.utc)
    commits = [run_dag(path, path.stem, logical_date=when, run_after=when) for _ in range(3)]
    assert len({r.run_id for r in commits}) == 1  # one DAG run, its task run three times:
    assert capfd.readouterr().out.count("already committed by this task") == 2
    assert len({r.xcom["put_config"] for r in commits}) == 1
    hook = PachydermHook(pachyderm_conn)
    from pachyderm_sdk.api import pfs

    history = list(hook.get_conn().pfs.list_commit(repo=pfs.Repo(name=wf, type="user")))
    assert len(history) == 1


def test_bad_spec_fails_before_any_pipeline(
    airflow_db, pachyderm_conn, pachd, tmp_path, unique_name
):
    wf = unique_name
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a-good.json").write_text(json.dumps(SPEC_TEMPLATE))
    typo = json.loads(
        json.dumps(SPEC_TEMPLATE)
        .replace("stage1", "stage2")
        .replace("parallelism_spec", "paralellism_spec")
    )
    (folder / "b-typo.json").write_text(json.dumps(typo))
    path = make_dag(airflow_db, f"bad_{wf.replace('-', '_')}", wf, str(folder))
    result = run_dag(path, path.stem)
    assert result.task_states["pipelines"] == "failed"
    assert result.task_states["put_config"] == "upstream_failed"
    hook = PachydermHook(pachyderm_conn)
    assert not hook.pipeline_exists(f"{wf}-stage1")  # the good spec was not applied either


@pytest.mark.parametrize("deferrable", [False, True], ids=["poke", "deferred"])
def test_failed_pipeline_fails_sensor_naming_it(
    airflow_db, pachyderm_conn, pachd, spec_dir, unique_name, capfd, deferrable
):
    wf = unique_name
    pachd.configure_pipeline(
        f"{wf}-stage2",
        fail=True,
        reason="cpsign exited 1",
        logs=["Exception in thread main"],
        # deferred: still running when the sensor starts, so the failure is decided
        # in execute_complete from the trigger's event
        duration=DEFER_DURATION if deferrable else 0.05,
    )
    path = make_dag(airflow_db, f"fail_{wf.replace('-', '_')}", wf, str(spec_dir), deferrable)
    result = run_dag(path, path.stem)
    assert result.task_states["wait"] == "failed"
    out = capfd.readouterr().out
    assert f"pipeline '{wf}-stage2'" in out and "cpsign exited 1" in out
    assert "Exception in thread main" in out


def test_pachd_down_task_retries_then_fails_clearly(airflow_db, monkeypatch, unique_name, capfd):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", f"pachyderm://127.0.0.1:{port}")
    name = f"down_{unique_name.replace('-', '_')}"
    source = f"""
    import datetime
    from airflow.sdk import DAG
    from cpsign_airflow.operators.pachyderm import PachydermCreateRepoOperator

    with DAG("{name}", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
        PachydermCreateRepoOperator(task_id="repo", repo="config", retries=1,
                                    retry_delay=datetime.timedelta(seconds=0))
    """
    path = write_dag(airflow_db / "dags", name, source)
    result = run_dag(path, name)
    assert result.task_states["repo"] == "failed"
    assert result.tries["repo"] == 2
    out = capfd.readouterr().out
    assert f"Pachyderm at grpc://127.0.0.1:{port} is unavailable" in out


def test_console_link_points_at_the_commit(airflow_db, pachd, monkeypatch, unique_name):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from cpsign_airflow.links.pachyderm import CONSOLE_URL_XCOM_KEY, PachydermConsoleLink

    host_port = pachd.address.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PACHYDERM_DEFAULT",
        json.dumps(
            {
                "conn_type": "pachyderm",
                "host": host,
                "port": int(port),
                "extra": {"console_url": "https://console.lab/"},
            }
        ),
    )
    name = f"link_{unique_name.replace('-', '_')}"
    source = f"""
    import datetime
    from airflow.sdk import DAG
    from cpsign_airflow.operators.pachyderm import PachydermCreateRepoOperator, PachydermPutFileOperator

    with DAG("{name}", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
        PachydermCreateRepoOperator(task_id="repo", repo="{unique_name}") >> PachydermPutFileOperator(
            task_id="put_config", repo="{unique_name}", path="/c.json", content="x"
        )
    """
    path = write_dag(airflow_db / "dags", name, source)
    result = run_dag(path, name)
    commit = result.xcom["put_config"]
    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(run_id=result.run_id, task_id="put_config", key=CONSOLE_URL_XCOM_KEY)
            .one()
        )
        url = XComModel.deserialize_value(row)
    assert url == f"https://console.lab/lineage/default/repos/{unique_name}/commit/{commit}"
    assert PachydermConsoleLink.name == "Pachyderm Console"


@pytest.mark.parametrize(
    ("name", "project", "expected"),
    [
        ("p" * 52, None, "at most 51"),
        ("p" * 39, "l" * 20, "Kubernetes name"),
    ],
)
def test_pipeline_names_are_limited_as_pachd_limits_them(name, project, expected):
    """Refused before any RPC, with pachd's own limits (the local pachd refuses them too)."""
    from cpsign_airflow.exceptions import PachydermSpecError
    from cpsign_airflow.specs.validate import validate_spec

    pipeline = {"name": name, **({"project": {"name": project}} if project else {})}
    spec = {
        "pipeline": pipeline,
        "transform": {"image": "x", "cmd": ["true"]},
        "input": {"pfs": {"repo": "data", "glob": "/"}},
    }
    with pytest.raises(PachydermSpecError, match=expected):
        validate_spec(spec)
    pipeline["name"] = name[:-1]
    validate_spec(spec)  # one character less is accepted


def test_specs_render_with_the_dags_jinja_environment(airflow_db, pachyderm_conn, unique_name):
    """A spec file found through template_searchpath, using a user_defined_macro and a
    templated ``specs``; an undefined variable fails before anything reaches pachd."""
    folder = airflow_db / f"specs-{unique_name}"
    folder.mkdir()
    repo, name = f"{unique_name}-in", f"{unique_name}-p"
    PachydermHook(pachyderm_conn).ensure_repo(repo)
    spec = {
        "pipeline": {"name": "{{ prefix }}-p"},
        "input": {"pfs": {"repo": "{{ prefix }}-in", "glob": "/*"}},
        "transform": {"image": "{{ image('busybox') }}", "cmd": ["sh", "-c", "true"]},
    }
    (folder / "p.json").write_text(json.dumps(spec))
    (folder / "broken.json").write_text(json.dumps({**spec, "description": "{{ nope }}"}))
    source = f"""
    import datetime
    from airflow.sdk import DAG
    from cpsign_airflow.operators.pachyderm import PachydermCreatePipelineOperator

    with DAG("jinja_env_{unique_name.replace("-", "_")}", schedule=None,
             start_date=datetime.datetime(2024, 1, 1), default_args={{"retries": 0}},
             template_searchpath=[{str(folder)!r}],
             user_defined_macros={{"image": lambda name: name + ":1.36"}},
             params={{"spec_file": "p.json"}}) as dag:
        PachydermCreatePipelineOperator(
            task_id="pipelines", specs="{{{{ params.spec_file }}}}",
            spec_vars={{"prefix": {unique_name!r}}},
        )
    """
    path = write_dag(airflow_db / "dags", f"jinja_env_{unique_name.replace('-', '_')}", source)
    result = run_dag(path, path.stem)
    assert result.state == "success", result.task_states
    stored = PachydermHook(pachyderm_conn).inspect_pipeline(name)["user_spec"]
    assert stored["transform"]["image"] == "busybox:1.36"
    before = PachydermHook(pachyderm_conn).inspect_pipeline(name)["version"]
    broken = run_dag(path, path.stem, run_conf={"spec_file": "broken.json"})
    assert broken.task_states == {"pipelines": "failed"}
    after = PachydermHook(pachyderm_conn).inspect_pipeline(name)
    assert after["version"] == before and "description" not in after["user_spec"]


@pytest.mark.parametrize("key", ["Transform", "DatumTries"])
def test_a_key_pachd_would_refuse_is_named_before_any_request(key):
    """pachd's CreatePipelineV2 reads specs with protojson (proto or lowerCamelCase names:
    ``src/server/pps/server/api_server.go`` CreatePipelineV2, ``protojson.Unmarshal``),
    so a PascalCase key, which betterproto's ``from_dict`` would take, is unknown there."""
    from cpsign_airflow.exceptions import PachydermSpecError
    from cpsign_airflow.specs.validate import validate_spec

    spec = {
        "pipeline": {"name": "p"},
        "transform": {"image": "x", "cmd": ["true"]},
        "input": {"pfs": {"repo": "data", "glob": "/"}},
        "datumTries": 2,  # lowerCamelCase: pachd takes it
    }
    validate_spec(spec)
    spec[key] = spec.pop("transform") if key == "Transform" else 3
    with pytest.raises(PachydermSpecError, match=key):
        validate_spec(spec)
