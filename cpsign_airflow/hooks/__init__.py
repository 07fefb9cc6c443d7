"""Hooks of the cpsign-airflow provider."""
