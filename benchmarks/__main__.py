"""``python -m benchmarks``: run every benchmark with its defaults and print one table.

Options are passed to the individual benchmarks only when run alone
(``python -m benchmarks.<name> --help``).
"""

from __future__ import annotations

import sys
import time

from benchmarks import (
    _common,
    dag_parse_time,
    detection_latency,
    orchestration_overhead,
    put_file_throughput,
    waiting_at_scale,
)


def main() -> int:
    rows = []
    for module in (
        detection_latency,
        waiting_at_scale,
        put_file_throughput,
        dag_parse_time,
        orchestration_overhead,
    ):
        started = time.monotonic()
        print(f"running {module.__name__} ...", flush=True)
        rows += module.main([])
        print(f"  done in {time.monotonic() - started:.0f} s", flush=True)
    print()
    _common.print_table(rows, title="== cpsign-airflow benchmarks ==")
    return 0  # measurements: a missed target is reported in the table, not as a failure


if __name__ == "__main__":
    sys.exit(main())
