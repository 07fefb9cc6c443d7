"""A local pachd: pachd's gRPC API served in-process, for tests and demos.

The unmodified ``pachyderm_sdk.Client`` talks to it (``Client.from_pachd_address(
pachd.address)``); state lives in plain Python objects (moto-style), one module
per service: ``pfs`` / ``pps`` / ``version`` / ``auth`` on a ``grpc.aio`` server
(``server``) running its own event loop in a background thread.  Entry points:
:class:`LocalPachd`, ``python -m cpsign_airflow.testing.pachd``, and the
``local_pachd`` fixture in ``cpsign_airflow.testing.pachd.pytest_plugin``.

Reproduced (pachd 2.x, SDK 2.12):

* Services ``/pfs_v2.API``, ``/pps_v2.API``, ``/versionpb_v2.API/GetVersion``
  (2.12.0, additional ``local-pachd``), ``/auth_v2.API/WhoAmI``; anything else
  answers UNIMPLEMENTED.
* Projects (``default`` always exists), user repos, branches, commits with
  parent/children, direct provenance/subvenance, ``started/finishing/finished``,
  description, ``error``, sizes; copy-on-write commit snapshots; ModifyFile
  (set_commit, delete_file, add_file raw chunks with append, copy_file), GetFile
  (<= 2 MiB messages, ``offset``), InspectFile (sha256 as ``hash``), ListFile,
  WalkFile, GlobFile, ListCommit, SubscribeCommit, InspectCommit ``wait``
  (STARTED/READY/FINISHING/FINISHED), InspectCommitSet (``wait`` streams each
  commit as it finishes, in provenance order), ListCommitSet.  Contents above
  4 MiB spill to temp files, so large files do not sit in RAM.
* Global IDs: StartCommit on an input branch (as in pachd 2.x, not FinishCommit)
  opens one commit set: an unfinished output commit per downstream pipeline,
  transitively, and one job per pipeline with the same 32-hex id.  A job waits
  for its input commits, so pipelines run in dependency order.  Creating or
  updating a pipeline writes a commit to its ``spec`` repo (type ``spec``, same
  name; its branch is part of the output branch's provenance) and starts a job
  in that commit set, plus downstream jobs.
* Jobs pass JOB_CREATED, JOB_STARTING, JOB_RUNNING, JOB_FINISHING, JOB_SUCCESS;
  failures end in JOB_FAILURE (output commit finished with ``error`` = reason),
  StopJob in JOB_KILLED, and downstream jobs of a failed/killed job end in
  JOB_UNRUNNABLE.  JobInfo data counts, times, ``details``; InspectJob ``wait``,
  ListJob, InspectJobSet (``wait``), ListJobSet, GetLogs (``tail``).
* CreatePipeline and CreatePipelineV2 (``update``, ``reprocess``, ``dry_run``,
  effective JSON with pachd's default ``datumTries``/resource requests);
  ``version`` bumps on update, ``salt`` changes only on reprocess;
  PipelineInfo carries ``user_spec_json``, ``effective_spec_json``,
  ``spec_commit``, and ``details`` when asked for (ListPipeline always).
* Error codes and texts of pachd's typed errors (``repo default/x not found``,
  ``branch "master" not found in repo default/x``, ``commit default/x@ID not
  found``, ``no commits found for commitset ID``, ``file P not found in repo
  default/x at commit ID``, ``pipeline "p" not found`` / ``already exists``,
  ``project "p" not found``, ``project p already exists``, ALREADY_EXISTS for
  repos) and auth texts (UNAUTHENTICATED ``no authentication token (try logging
  in)`` / ``provided auth token is corrupted or has expired (try logging in
  again)``; UNIMPLEMENTED ``the auth service is not activated``).  Errors pachd
  raises as plain Go errors (invalid names, ``pipeline must specify a
  transform``, ``invalid pipeline spec: ...``, protojson's ``proto: (line L:C):
  unknown field "x"``) arrive as UNKNOWN, as they do from pachd.

Not reproduced / simplified (known differences):

* No containers: jobs run the configured behaviour (default: ~0.05 s, writes
  ``/<pipeline>.txt`` naming the job id when there is at least one datum) or a
  Python handler (:class:`JobContext`); no workers, pods, egress, services,
  spouts, cron, triggers, S3 gateway, transactions, or datum-level APIs.
* Datums are counted, not processed one by one: a pfs input yields its glob's
  matches (``/`` is one datum; ``*``/``?``/``**`` patterns over the paths of the
  input commit); ``cross`` multiplies, ``union``/``join``/``group`` add (join_on
  / group_by are stored but not evaluated).  No datum skipping between jobs.
* Output commits start empty (no reuse of the parent job's output); ``meta``
  repos, ``stats``, ``auth_info``, permissions/roles, and pipeline history
  (``history`` returns the current version only) are not modelled.
* PipelineInfo.state is always PIPELINE_RUNNING (no STANDBY/autoscaling);
  the effective spec is the user JSON merged with defaults, not protojson
  re-marshalled output; JSON syntax errors and the exact wording of a few rarely
  seen messages (deleting repos with subvenance, StopJob on a finished job,
  missing job ``job default/p@ID not found``) are best effort.
* Ancestry syntax (``master^``), ``put file`` from URLs, GetFileTAR, Fsck,
  squash/drop commit sets, DeleteAll are not implemented (UNIMPLEMENTED).
* Auth is a single root token: any other token is rejected; GetVersion works
  without one, as on pachd.
* Hash values are sha256, not pachd's content hash.
* Persistence is opt-in (``LocalPachd(data_dir=...)``, ``--data-dir DIR``): projects,
  repos, branches, commits with their files, pipelines, jobs (counts, logs, meta
  commits, so datum skipping carries on), commit sets and secrets go to
  ``DIR/state.json`` plus content-addressed ``DIR/blobs/``, saved after changes and
  at stop, loaded at start; pachd keeps them in etcd/postgres and object storage.
  A job not done at the last save runs again from the start after a restart
  (its datums re-run). Without a data dir, state lives in memory only.
"""

from .errors import PachdError
from .faults import Faults
from .jobs import JobContext, PipelineFailure
from .server import LocalPachd

__all__ = ["Faults", "JobContext", "LocalPachd", "PachdError", "PipelineFailure"]
