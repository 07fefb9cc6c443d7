"""Operators of the cpsign-airflow provider."""
