"""OpenLineage datasets for Pachyderm repos."""
