"""PPS (``pps_v2.API``) of the local pachd, laid out as moto lays out a service.

* :mod:`.records`: the rows (pipelines, jobs);
* :mod:`.models`: :class:`~.models.PpsBackend`, the state and pachd's rules (API server
  and master: api_server.go, master.go, monitor.go, poller.go; ppsutil);
* :mod:`.specs`: pipeline specs as pachd reads them (protojson, defaults, validation);
* :mod:`.servicer`: the gRPC methods: decode, call the backend, encode.

Running the jobs (datums, the pipelines' commands) is apart: :mod:`..jobs`,
:mod:`..datums`, :mod:`..worker`. What is reproduced and what differs from pachd: the
package docstring (:mod:`cpsign_airflow.testing.pachd`).
"""
