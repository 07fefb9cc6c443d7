"""Sensors of the cpsign-airflow provider."""
