"""PFS (``pfs_v2.API``) of the local pachd, laid out as moto lays out a service.

* :mod:`.records`: the rows (projects, repos, branches, commits), names and ids;
* :mod:`.models`: :class:`~.models.PfsBackend`, the state and pachd's rules
  (server_commit.go, server_commit_set.go, server_branch.go, pfsdb);
* :mod:`.files`: a commit's files and pachd's rules for them (server_file.go);
* :mod:`.servicer`: the gRPC methods: decode, call the backend, encode.

What is reproduced and what differs from pachd: the package docstring
(:mod:`cpsign_airflow.testing.pachd`).
"""
