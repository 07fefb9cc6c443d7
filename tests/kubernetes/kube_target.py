"""Where the Kubernetes tests run: the fake API server, or CPSIGN_TEST_KUBECONFIG's server.

A module of its own (not conftest), so test modules can import these names whatever
other conftest.py pytest has loaded.
"""

from __future__ import annotations

import os

KUBECONFIG = os.environ.get("CPSIGN_TEST_KUBECONFIG") or None
NAMESPACE = (
    os.environ.get("CPSIGN_TEST_KUBE_NAMESPACE") or "cpsign-airflow-test"
    if KUBECONFIG
    else "pachyderm"
)
REAL = KUBECONFIG is not None
FAKE_ONLY = (
    "drives the fake API server's test-only controls; CPSIGN_TEST_KUBECONFIG points at a "
    "real API server"
)
