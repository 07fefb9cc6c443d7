"""Apache Airflow provider for CPSign model-training workflows on Pachyderm."""

__version__ = "0.1.0"
