"""Benchmarks for the Pachyderm hook and trigger against the local pachd.

``make bench`` (``.venv/bin/python -m benchmarks``) runs all of them and prints
one table; each also runs alone::

    python -m benchmarks.detection_latency [--samples 20] [--poll-samples 5]
    python -m benchmarks.waiting_at_scale [--count 1000] [--idle 30] [--baseline-count 300]
        [--check-interval 15] [--check-idle 60]
    python -m benchmarks.put_file_throughput [--size-mib 1024] [--repeats 2]
    python -m benchmarks.orchestration_overhead [--duration 5] [--runs 2] [--set KEY=VALUE]
        [--keep]

These are measurements, not pass/fail tests: each figure is printed beside a
baseline measured in the same run, with the target it is meant to meet. The
local pachd always runs in a separate process (``benchmarks._pachd``) so the
measuring process holds only the client side.

Logging is set to WARNING (``AIRFLOW__LOGGING__LOGGING_LEVEL``) unless already
set, so the trigger's per-commit info lines do not flood the output.
"""

from __future__ import annotations

import os
import tempfile

# Airflow reads its configuration at import: give it a private home first.
os.environ.setdefault("AIRFLOW_HOME", os.path.join(tempfile.gettempdir(), "cpsign-airflow-bench"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
