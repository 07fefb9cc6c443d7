"""A local pachd: pachd's gRPC API served in-process, for tests and demos.

The unmodified ``pachyderm_sdk.Client`` talks to it (``Client.from_pachd_address(
pachd.address)``) on a ``grpc.aio`` server (``server``) running its own event loop in
a background thread.  Entry points: :class:`LocalPachd`, ``python -m
cpsign_airflow.testing.pachd``, and the ``local_pachd`` fixture in
``tests/fixture_plugins/local_pachd.py``.

Laid out as moto lays out its services: per service, a backend holding the service's
state and pachd's rules, and a servicer that only decodes a request, calls the
backend and encodes the reply.

* ``pfs/``: ``records`` (projects, repos, branches, commits), ``models``
  (``PfsBackend``: the state and pachd's PFS rules), ``commit_sets`` (global ids),
  ``files`` (a commit's files), ``servicer`` (``pfs_v2.API``);
* ``pps/``: ``records`` (pipelines, jobs), ``models`` (``PpsBackend``: the state and
  pachd's PPS rules, working on PFS through ``PfsBackend``), ``specs`` (pipeline
  specs as pachd reads them; unknown keys through the provider's own walker,
  :mod:`cpsign_airflow.specs.fields`), ``servicer`` (``pps_v2.API``);
* ``auth`` (the root token and its rules, ``auth_v2.API``), ``version``
  (``versionpb_v2.API``);
* ``state`` (``State``: the backends) and ``events`` (waiting and notification shared
  by the backends, the save-after-change hook);
* running jobs, apart from both: ``jobs`` (the job state machine, scripted
  behaviours, the worker's environment), ``datums`` (building datums), ``worker``
  (a datum's command in its sandbox), ``filestore`` (file contents);
* ``persistence`` (``--data-dir``), ``wire`` (fast CommitInfo/JobInfo encoding),
  ``faults`` (injected failures), ``errors`` (pachd's error texts), ``healthcheck``,
  ``secrets`` and ``__main__`` (the command line).

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
  (STARTED/READY/FINISHING/FINISHED), InspectCommitSet (``wait``: the finished
  commits at once, then each other as it finishes), ListCommitSet.  Contents above
  4 MiB spill to temp files, so large files do not sit in RAM.
* Commit sets as pachd lists them (server_commit_set.go, pfsdb.CommitSetProvenance):
  InspectCommitSet and ListCommitSet also list the commits of other sets in the
  set's transitive provenance, each with its own id (the pipelines' spec commits; a
  pipeline-creation set also the input heads its job reads), topologically sorted.
  A commit asked for by a set id its repo has no commit in is that repo's commit in
  the set's provenance (pickCommitTx's ResolveCommitProvenance).
* Commit refs as pachd parses them (``CommitPicker.UnmarshalText``, src/pfs/pfs.go):
  a ref of 32 hex digits with a ``4`` as the 13th is a commit id, in ``Commit.id`` or
  as a branch name alike; any other ``Commit.id`` names a branch. CreateBranch and
  StartCommit refuse a branch named like a commit (UNKNOWN ``create branch: update
  head: branch name cannot be a UUID V4``, StartCommit's text wrapped as pachd
  does; pfsdb/branches.go).
* Global IDs: StartCommit on an input branch (as in pachd 2.x, not FinishCommit)
  opens one commit set: an unfinished output commit per downstream pipeline,
  transitively, and one job per pipeline with the same 32-hex id.  A job waits
  for its input commits, so pipelines run in dependency order.  Creating or
  updating a pipeline writes a commit to its ``spec`` repo (type ``spec``, same
  name; its branch is part of the output branch's provenance) and starts a job
  in that commit set, plus downstream jobs.
* Pipelines run for real (``jobs``, ``datums``, ``worker``): each datum runs
  ``transform.cmd`` with ``transform.stdin`` as a child process, in a private
  mount namespace (bubblewrap, or ``unshare`` as root) where ``/pfs/<input>/``
  holds that datum's files only and ``/pfs/out/`` is collected as its output;
  ``working_dir``; ``transform.env`` plus pachd's worker variables
  (``PACH_JOB_ID``, ``PACH_DATUM_ID``, ``PACH_OUTPUT_COMMIT_ID``,
  ``PPS_PIPELINE_NAME``, ``PPS_PROJECT_NAME``, ``PPS_SPEC_COMMIT``,
  ``PACH_IN_WORKER``, ``<input>`` and ``<input>_COMMIT``,
  ``PACH_DATUM_<input>_JOIN_ON``/``_GROUP_BY``); secrets as ``env_var`` and as
  files under ``mount_path``. stdout/stderr become the job's user logs, per datum.
  As in pachd's worker (driver.go), a command that cannot be started fails the
  datum with Go's exec error (``exec: "NAME": executable file not found in $PATH``,
  ``fork/exec PATH: no such file or directory``), which its failure log line
  carries; pachd never checks ``transform.cmd`` before.
* Datums as pachd's worker builds them: globs in pachd's (ohmyglob) syntax, an
  empty commit has none; ``cross``, ``union``, ``join`` (``join_on``,
  ``outer_join``) and ``group`` (``group_by``) over capture groups, children
  sorted by input name; ``parallelism_spec.constant`` datums at once. Datum IDs
  are pachd's DatumID (BLAKE2b over input name, repo, branch, path), hashes its
  HashDatum (id, input hashes, salt). With ``reprocess_spec: until_success`` a
  datum whose hash and success match the parent job's is skipped
  (``data_skipped``) and its output carried over; ``every_job`` never skips;
  the output commit is the union of the datums' outputs (same path: concatenated
  in datum-id order). A pipeline's jobs run in order (a job waits for its parent
  output commit), as pachd's worker does.
* A failing command fails its datum; it is tried ``datum_tries`` times (default
  3), then the job ends JOB_FAILURE ``datum <64-hex id> failed``, its output and
  meta commits finish with that error, and downstream jobs end JOB_UNRUNNABLE
  ``unrunnable because the following upstream pipelines failed: <input>``.
* Jobs pass JOB_CREATED, JOB_STARTING, JOB_RUNNING, JOB_FINISHING, JOB_SUCCESS;
  StopJob gives JOB_KILLED (``job stopped`` by default; a finished job: OK, no
  effect); updating a pipeline kills its unfinished jobs ("all jobs killed
  because pipeline was updated for user unknown_username"). InspectJob ``wait``,
  ListJob (``history``: 0, the default, lists the jobs of each pipeline's current
  version only, N also those of the N versions before, -1 all; ppsutil's
  ListPipelineInfo), InspectJobSet (``wait``; an unknown id streams nothing, OK),
  ListJobSet, GetLogs (``tail``, ``datum``; for a pipeline without a job: the
  lines of all its jobs, as pachd reads all of the pipeline's pods).
* Pipelines: each has output, ``spec`` and ``meta`` repos; output and meta
  branches share the provenance (inputs + spec), so a commit set holds the meta
  commits too. State PIPELINE_STARTING, then RUNNING, or CRASHING when its workers
  cannot start: here, when its ``transform.image`` is one the test named in
  ``LocalPachd.unpullable_images`` (a stand-in for an image that cannot be pulled),
  with pachd's reason for it, kubelet's ``Back-off pulling image "IMAGE"``
  (poller.go pollPipelinePods), scripted pipelines included. Its jobs wait in
  JOB_STARTING with their output commits open until an update or StopJob. As
  pachd's master does, a CRASHING pipeline is checked again every
  ``LocalPachd.crashing_backoff`` seconds (pachd's ``crashingBackoff``, 15 s) and
  turns RUNNING once its image can be pulled; its waiting jobs then run. CreatePipeline and
  CreatePipelineV2 (``update``, ``reprocess``, ``dry_run``); pachd's built-in defaults
  (``transform.image`` ubuntu:20.04, ``outputBranch``, ``datumTries`` "3",
  ``reprocessSpec`` until_success) merged into a compact, key-sorted effective
  JSON; ``version`` bumps on update, ``salt`` changes only on reprocess.
* PFS lifecycle: StartCommit on a branch whose head is open fails (UNKNOWN
  ``start commit in transaction: create commit: parent commit P/R@ID has not been
  finished``); a FINISHING head is enough. FinishCommit only sets ``finishing``
  (pachd's server_commit.go finishCommit); ``finished`` is set later, outside the
  call, as pachd's PFS master does after compacting the commit (master.go):
  ``LocalPachd.finish_delay`` seconds later (default 0: on the next loop turn),
  which tests widen to hold a commit FINISHING. From ``finishing`` on, ModifyFile
  and FinishCommit on the commit fail (UNKNOWN ``commit P/R@ID has already
  finished``, server_file.go). Finishing a pipeline's output/meta commit is
  refused (use StopJob).
* pps secrets: CreateSecret (a Kubernetes Secret manifest), InspectSecret,
  ListSecret, DeleteSecret; CreatePipeline refuses a spec mounting a missing
  secret (``missing Kubernetes secret NAME``) or key, or ``env_var`` without key.
* Error codes and texts of pachd's errors: ``repo default/x not found``,
  ``branch "master" not found in repo default/x``, ``commit default/x@ID not
  found``, ``no commits found for commitset ID``, ``file P not found in repo
  default/x at commit ID``, ``pipeline "p" not found``, ``pipeline
  "default/p" already exists``, ``pipeline "p" cannot be created because a repo
  with the same name already exists``, ``jobs default/p@ID not found``, pipeline
  names over 51 characters and Kubernetes names (``<project>-<name>-v99``) over
  63, INVALID_ARGUMENT ``could not make effective spec: ...`` for a V2 spec with
  an unknown field or bad JSON, ``project "p" not found``, ``project p already
  exists``, ALREADY_EXISTS for repos; auth texts (UNAUTHENTICATED ``no
  authentication token (try logging in)`` / ``provided auth token is corrupted
  or has expired (try logging in again)``; UNIMPLEMENTED ``the auth service is
  not activated``). Plain Go errors arrive as UNKNOWN, as they do from pachd.
* Persistence is opt-in (``LocalPachd(data_dir=...)``, ``--data-dir DIR``):
  projects, repos, branches, commits with their files, pipelines, jobs, commit
  sets and secrets go to ``DIR/state.json`` plus content-addressed
  ``DIR/blobs/``, saved after changes and at stop, loaded at start (pachd keeps
  them in etcd/postgres and object storage). Without it, state is in memory.

Not reproduced / simplified (known differences):

* The gap between ``finishing`` and ``finished`` is a fixed ``finish_delay`` for
  user commits (pachd's grows with the commit's size and the load; measured: a
  retry at once after FinishCommit met it, one 0.05 s later did not); a job's
  output and meta commits finish at once, and the master's validation never fails
  a commit.
* No containers and no image pulls: ``image`` is recorded, the command runs on
  this machine with its environment (the "image" is this machine), and the
  working directory defaults to the server's. No pods, resource requests or
  limits, sidecars, egress, services, spouts, cron, triggers, S3 gateway,
  ``err_cmd``, ``accept_return_code``, ``datum_timeout``/``job_timeout``,
  transactions or the datum-level APIs (ListDatum, RestartDatum).
* A test may configure a pipeline with a scripted behaviour
  (``configure_pipeline``: a duration, a failure, a Python handler seeing all
  input files at once) in place of its transform; such jobs do not split datums,
  skip, or wait for their parent job.
* File hashes are sha256 of the contents (pachd's are its own content hashes), so
  datum hashes differ from a real cluster's in value, not in behaviour.
  A directory datum's hash covers its files' hashes directly (pachd hashes the
  tree level by level). The meta commit holds ``/meta/<datum>/meta`` (JSON
  ``hash``/``job``) and ``/pfs/<datum>/out/...``, not pachd's protobuf Meta and
  datum storage tree. Skipping uses the nearest ancestor job whose output and
  meta commits finished without error.
* A pipeline is RUNNING at once unless its image is marked unpullable; no STANDBY,
  autoscaling, RESTARTING or FAILURE states. CRASHING is only the unpullable image
  above, with the ImagePullBackOff message throughout (pachd's reason alternates
  with the ErrImagePull event's runtime error); no scheduling failures or missing
  secrets at pod start (CreatePipeline refuses those here). ``stats``,
  ``auth_info``, permissions/roles and InspectPipeline/ListPipeline ``history``
  (the current version only) are not modelled.
* With persistence, a job not done at the last save runs again from the start
  after a restart (pachd's workers would resume its remaining datums).
* The order among a commit set's commits from other sets is by creation (pachd's
  follows its SQL query). Ancestry syntax (``master^``), branch-root syntax
  (``master.1``), ``put file`` from URLs, GetFileTAR, Fsck,
  squash/drop commit sets, DeleteAll are not implemented (UNIMPLEMENTED).
* Auth is a single root token (user ``pach:root``): any other token is
  rejected; GetVersion works without one, as on pachd.
* Unknown-field errors carry the line and column in the user's JSON; pachd's
  point into its merged effective spec.
"""

from .errors import PachdError
from .faults import Faults
from .jobs import JobContext, PipelineFailure
from .server import LocalPachd

__all__ = ["Faults", "JobContext", "LocalPachd", "PachdError", "PipelineFailure"]
