"""The test kit's pytest fixtures, loaded by tests/conftest.py (``pytest_plugins``).

They live with the tests, not in the package, so the wheel's runtime never needs pytest:
``local_pachd`` (:class:`cpsign_airflow.testing.pachd.LocalPachd`), ``kube_apiserver`` /
``kube_conn`` (the fake Kubernetes API server) and the bookkeeping databases
(``bookkeeping_url`` on MariaDB and SQLite).
"""
