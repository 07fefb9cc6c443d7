"""The CPSign training workflow as Airflow tasks, shared by the bundled DAGs.

``dags/`` holds thin DAG files; the task groups and TaskFlow tasks they wire
together live here so one training chain serves manual training and
scheduled retraining alike, and so tests can import them.
"""
