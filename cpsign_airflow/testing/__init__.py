"""Local stand-ins (pachd, MariaDB) for testing DAGs without a cluster."""
