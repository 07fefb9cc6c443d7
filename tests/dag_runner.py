"""Run a DAG file through Airflow's own ``dag.test()`` and read back what happened."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    state: str
    run_id: str
    task_states: dict[str, str]
    tries: dict[str, int]
    xcom: dict[str, Any] = field(default_factory=dict)


def write_dag(dags_folder: Path, name: str, source: str) -> Path:
    path = dags_folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def load_dag(path: Path, dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id)


def run_dag(path: Path, dag_id: str, **test_kwargs: Any) -> RunResult:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from cpsign_airflow._dag_test import prepare_dag_test

    prepare_dag_test()  # Airflow 3.2's dag.test() needs it (see there)
    dag = load_dag(path, dag_id)
    dr = dag.test(**test_kwargs)
    with create_session() as session:
        tis = dr.get_task_instances(session=session)
        rows = (
            session.query(XComModel)
            .filter_by(dag_id=dag_id, run_id=dr.run_id, key="return_value")
            .all()
        )
        xcom = {row.task_id: XComModel.deserialize_value(row) for row in rows}
        return RunResult(
            state=str(dr.state),
            run_id=dr.run_id,
            task_states={ti.task_id: str(ti.state) for ti in tis},
            tries={ti.task_id: ti.try_number for ti in tis},
            xcom=xcom,
        )
