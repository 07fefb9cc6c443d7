"""Running one datum the way a pachd worker does, as a local process instead of a pod.

A worker's user container sees ``/pfs/<input>/...`` (the datum's files only) and
``/pfs/out`` at those literal paths, because pipeline specs hard-code them. Here
each datum gets a private mount namespace built by bubblewrap (``bwrap``): the
host's top-level directories are bound in, and a per-datum directory appears as
``/pfs``; secrets with a ``mount_path`` appear there too. As root without
bubblewrap, ``unshare --mount`` plus a bind mount onto ``/pfs`` does the same
(``/pfs`` must then exist as an empty directory, which is created if missing).

``image`` is not pulled: the "image" is this machine. As in pachd's worker, a
command that cannot be started fails its datum with Go's exec error (driver.go
RunUserCode); it never makes the pipeline CRASHING.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pachyderm_sdk.api import pps

from .datums import Datum
from .filestore import FileData

MOUNT_PATH_ROOTS_NEVER_BOUND = {"proc", "dev", "pfs", "sys"}


class SandboxUnavailable(RuntimeError):
    """Neither bubblewrap nor a root ``unshare`` can give a datum its own ``/pfs``."""


def sandbox_kind() -> str:
    """``bwrap`` or ``unshare``; raises :class:`SandboxUnavailable` saying what is missing."""
    forced = os.environ.get("CPSIGN_LOCAL_PACHD_SANDBOX")
    if forced in ("bwrap", "unshare"):
        return forced
    if shutil.which("bwrap"):
        return "bwrap"
    if os.geteuid() == 0 and shutil.which("unshare"):
        return "unshare"
    raise SandboxUnavailable(
        "the local pachd cannot show a datum its files at /pfs: bubblewrap (bwrap) is not "
        "installed and this process is not root (needed for unshare --mount); install it "
        "with 'apt-get install bubblewrap'"
    )


def exec_error(
    transform: pps.Transform, env: Mapping[str, str], workdir: str, pfs_dir: Path
) -> str:
    """The error pachd's worker gets starting ``transform.cmd`` ("" if it can start).

    RunUserCode (src/server/worker/driver/driver.go) runs it with Go's exec.Command:
    a name without ``/`` is looked up in ``$PATH``; a path that cannot be executed
    fails at fork/exec. The datum fails with that error (and is tried again).
    """
    cmd = list(transform.cmd)
    if not cmd:
        return "invalid pipeline transform, no command specified"
    program = cmd[0]
    if "/" not in program:
        if shutil.which(program, path=env.get("PATH", os.defpath)):
            return ""
        return f'exec: "{program}": executable file not found in $PATH'
    path = os.path.join(workdir, program)
    if path == "/pfs" or path.startswith("/pfs/"):  # the datum's /pfs, as the datum sees it
        path = str(pfs_dir) + path[len("/pfs") :]
    if not os.path.exists(path):
        return f"fork/exec {program}: no such file or directory"
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        return f"fork/exec {program}: permission denied"
    return ""


@dataclass
class DatumRun:
    exit_code: int
    outputs: dict[str, FileData]
    error: str = ""


def _materialize(root: Path, datum: Datum) -> None:
    for inp in datum.inputs:
        base = root / inp.name
        base.mkdir(parents=True, exist_ok=True)
        for path, fd in inp.files.items():
            target = base / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as fh:
                for chunk in fd.chunks():
                    fh.write(chunk)


def _collect(out: Path) -> dict[str, FileData]:
    outputs: dict[str, FileData] = {}
    for dirpath, _dirs, names in os.walk(out):
        for name in names:
            full = Path(dirpath) / name
            if full.is_symlink() or not full.is_file():
                continue
            fd = FileData()
            with open(full, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    fd.append(chunk)
            outputs["/" + str(full.relative_to(out))] = fd
    return outputs


def _bwrap_args(pfs_dir: Path, mounts: list[tuple[Path, str]], workdir: str) -> list[str]:
    targets = ["/pfs", *(target for _, target in mounts)]
    shadowed = {t.strip("/").split("/")[0] for t in targets}
    args = ["bwrap", "--die-with-parent", "--proc", "/proc", "--dev-bind", "/dev", "/dev"]
    for entry in sorted(Path("/").iterdir()):
        name = entry.name
        if name in MOUNT_PATH_ROOTS_NEVER_BOUND:
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry), str(entry)]
        elif name in shadowed and entry.is_dir():
            # bind its children, so a mount below it needs no directory on the host
            args += ["--dir", str(entry)]
            for child in sorted(entry.iterdir()):
                if str(child) not in targets:
                    args += ["--bind", str(child), str(child)]
        else:
            args += ["--bind", str(entry), str(entry)]
    if Path("/sys").exists():
        args += ["--ro-bind", "/sys", "/sys"]
    args += ["--bind", str(pfs_dir), "/pfs"]
    for source, target in mounts:
        args += ["--ro-bind", str(source), target]
    args += ["--chdir", workdir, "--"]
    return args


def _unshare_script(pfs_dir: Path, mounts: list[tuple[Path, str]], workdir: str) -> list[str]:
    lines = ["set -e", f"mount --bind {_q(pfs_dir)} /pfs"]
    for source, target in mounts:
        lines += [f"mkdir -p {_q(target)}", f"mount --bind {_q(source)} {_q(target)}"]
    lines += [f"cd {_q(workdir)}", 'exec "$@"']
    Path("/pfs").mkdir(exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(lines), "sh"]


def _q(value: object) -> str:
    return "'" + str(value).replace("'", "'\\''") + "'"


async def run_datum(
    *,
    transform: pps.Transform,
    datum: Datum,
    env: Mapping[str, str],
    secret_files: list[tuple[str, Mapping[str, bytes]]],
    log: Callable[[datetime, str], None],
    clock: Callable[[], datetime],
) -> DatumRun:
    """Run ``transform`` on ``datum`` in a fresh ``/pfs``; outputs are ``/pfs/out``'s files."""
    kind = sandbox_kind()
    workdir = transform.working_dir or os.getcwd()
    with tempfile.TemporaryDirectory(prefix="local-pachd-datum-") as tmp:
        pfs_dir = Path(tmp) / "pfs"
        _materialize(pfs_dir, datum)
        (pfs_dir / "out").mkdir(parents=True, exist_ok=True)
        problem = exec_error(transform, env, workdir, pfs_dir)
        if problem:
            return DatumRun(-1, {}, problem)
        mounts: list[tuple[Path, str]] = []
        for index, (mount_path, items) in enumerate(secret_files):
            source = Path(tmp) / f"secret-{index}"
            source.mkdir()
            for key, value in items.items():
                (source / key).write_bytes(value)
            mounts.append((source, "/" + mount_path.strip("/")))
        if kind == "bwrap":
            prefix = _bwrap_args(pfs_dir, mounts, workdir)
        else:
            prefix = _unshare_script(pfs_dir, mounts, workdir)
        stdin = ("\n".join(transform.stdin) + "\n").encode() if transform.stdin else None
        proc = await asyncio.create_subprocess_exec(
            *prefix,
            *transform.cmd,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
        try:
            if stdin is not None:
                assert proc.stdin is not None
                proc.stdin.write(stdin)
                await proc.stdin.drain()
                proc.stdin.close()
            assert proc.stdout is not None
            async for raw in proc.stdout:
                log(clock(), raw.decode(errors="replace").rstrip("\n"))
            code = await proc.wait()
        except BaseException:
            _kill(proc)
            await asyncio.shield(proc.wait())
            raise
        if code != 0:
            return DatumRun(code, {}, f"exit status {code}")
        return DatumRun(0, _collect(pfs_dir / "out"))


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
