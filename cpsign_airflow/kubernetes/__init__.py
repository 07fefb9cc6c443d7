"""Kubernetes side of the provider, through the cncf-kubernetes ``KubernetesHook``.

* :mod:`.client` - plain-dict reads and writes of secrets, services and
  deployments, Kubernetes errors translated to :mod:`.errors` types;
* :mod:`.secrets` - secrets built from Airflow connections/Variables
  (idempotent, labelled, never logging values) and the pipeline-spec check;
* :mod:`.discovery` - pachd's address from its Service (replaces
  ``pachctl port-forward`` / ``export ADDRESS=...``);
* :mod:`.manifests` - the CPSign prediction-service Deployment and Service.

Nothing here imports the ``kubernetes`` client or the hook at module import:
DAG files that import the operators stay cheap to parse.
"""
