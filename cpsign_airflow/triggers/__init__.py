"""Triggers of the cpsign-airflow provider."""
