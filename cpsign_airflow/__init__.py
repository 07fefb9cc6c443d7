"""Apache Airflow provider for CPSign model-training workflows on Pachyderm."""

__version__ = "0.2.0"
