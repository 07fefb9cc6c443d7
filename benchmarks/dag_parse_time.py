"""Parse time of each bundled DAG file, as a ratio to a one-task DAG.

Each sample is a fresh interpreter that has already imported ``airflow.sdk``
(as Airflow's DAG processor has) and then executes one DAG file, so what is
measured is what the file itself costs at parse time: its own imports of this
provider included. The one-task DAG is measured the same way in the same run.
Target: each bundled file within 1.5x of the baseline.

``python -m benchmarks.dag_parse_time [--samples 7]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._common import Row, print_table

REPO = Path(__file__).resolve().parent.parent
BASELINE = """
import datetime
from airflow.sdk import DAG, task

with DAG("baseline", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    @task
    def one():
        return 1

    one()
"""
# The same one-task DAG carrying cpsign_training's trigger form: Airflow deep-copies
# a DAG's Params into every operator it builds, so a big form costs per task.
BASELINE_WITH_FORM = """
import datetime
from airflow.sdk import DAG, task
from cpsign_airflow.cpsign.params import training_params

with DAG("baseline_form", schedule=None, start_date=datetime.datetime(2024, 1, 1), params=training_params()) as dag:
    @task
    def one():
        return 1

    one()
"""
PROBE = """
import runpy, sys, time
import airflow.sdk  # the DAG processor has Airflow loaded before it parses a file
started = time.perf_counter()
runpy.run_path(sys.argv[1])
print(time.perf_counter() - started)
"""
TARGET = 1.5


def parse_seconds(path: Path, samples: int) -> float:
    times = []
    for _ in range(samples):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        baseline_file = Path(tmp) / "baseline.py"
        baseline_file.write_text(BASELINE)
        baseline = parse_seconds(baseline_file, args.samples)
        form_file = Path(tmp) / "baseline_form.py"
        form_file.write_text(BASELINE_WITH_FORM)
        with_form = parse_seconds(form_file, args.samples)
    rows = [
        Row(
            "DAG parse time",
            "one-task DAG with the training form",
            f"{with_form * 1000:.0f} ms = {with_form / baseline:.2f}x",
            f"{baseline * 1000:.0f} ms (one-task DAG)",
        )
    ]
    for path in sorted((REPO / "dags").glob("*.py")):
        seconds = parse_seconds(path, args.samples)
        ratio = seconds / baseline
        rows.append(
            Row(
                "DAG parse time",
                f"{path.name} (median of {args.samples})",
                f"{seconds * 1000:.0f} ms = {ratio:.2f}x",
                f"{baseline * 1000:.0f} ms (one-task DAG)",
                f"<= {TARGET}x",
                ratio <= TARGET,
            )
        )
    return rows


if __name__ == "__main__":
    print_table(main(sys.argv[1:]), title="== DAG parse time ==")
