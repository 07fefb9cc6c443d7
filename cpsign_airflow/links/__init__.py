"""Links of the cpsign-airflow provider."""
