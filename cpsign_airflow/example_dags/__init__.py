"""Example DAGs for the Pachyderm operators, sensor and trigger (run as tests)."""
