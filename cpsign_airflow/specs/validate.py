"""Check Pachyderm 2.x pipeline specs before anything is sent to pachd.

pachyderm-sdk's ``from_dict`` drops keys it does not know, so a typo such as
``paralellism_spec`` would vanish silently. This walks a spec against the
CreatePipelineRequest message tree and reports every unknown key, missing
required field and unresolvable input repo, each with its file and field path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from cpsign_airflow.exceptions import PachydermSpecError
from cpsign_airflow.specs.fields import walk

_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+\Z")


def unknown_and_mistyped(spec: dict[str, Any]) -> list[str]:
    """Field-path problems of ``spec`` against CreatePipelineRequest, or [].

    Keys are read as pachd reads them (protojson, see :mod:`.fields`): a field's proto
    name or its lowerCamelCase JSON name. ``Transform`` or ``DatumTries``, which
    betterproto would take, pachd's CreatePipelineV2 refuses as unknown fields.
    """
    from pachyderm_sdk.api import pps

    return [str(finding) for finding in walk(spec, pps.CreatePipelineRequest, names="protojson")]


def input_repos(spec: dict[str, Any]) -> list[str]:
    """Names of the repos a spec reads from (pfs inputs anywhere in its input tree)."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for child in node:
                visit(child)
        elif isinstance(node, dict):
            pfs = node.get("pfs")
            if isinstance(pfs, dict) and pfs.get("repo"):
                found.append(pfs["repo"])
            for key in ("cross", "union", "join", "group"):
                if key in node:
                    visit(node[key])

    visit(spec.get("input"))
    return found


#: pachd 2.12 (src/server/pps/server/api_server.go): maxPipelineNameLength and the
#: DNS-label limit its "<project>-<pipeline>-v<version>" Kubernetes objects must fit.
MAX_PIPELINE_NAME = 51
MAX_K8S_NAME = 63


def validate_spec(spec: dict[str, Any], source: str = "<spec>") -> None:
    """Raise PachydermSpecError listing every problem of one spec."""
    problems: list[str] = []
    pipeline = spec.get("pipeline")
    name = pipeline.get("name") if isinstance(pipeline, dict) else None
    if not name:
        problems.append("pipeline.name: required")
    elif not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > MAX_PIPELINE_NAME:
        problems.append(
            f"pipeline.name: {name!r} is invalid (letters, digits, '-' and '_' only, at most "
            f"{MAX_PIPELINE_NAME}: pachd's limit)"
        )
    else:
        project = pipeline.get("project") if isinstance(pipeline, dict) else None
        project_name = (project.get("name") if isinstance(project, dict) else None) or "default"
        k8s_name = f"{project_name}-{name}-v99".lower().replace("_", "-")
        if len(k8s_name) > MAX_K8S_NAME:
            problems.append(
                f"pipeline.name: project and name {project_name}/{name} give the Kubernetes name "
                f"{k8s_name!r}, {len(k8s_name) - MAX_K8S_NAME} characters over pachd's limit of "
                f"{MAX_K8S_NAME}"
            )
    transform = spec.get("transform")
    if not spec.get("spout") and not spec.get("service"):
        if not isinstance(transform, dict) or not transform.get("image"):
            problems.append("transform.image: required")
        if not spec.get("input"):
            problems.append("input: required (a pfs, cross, union, join, group or cron input)")
    if isinstance(transform, dict) and not (transform.get("cmd") or transform.get("stdin")):
        problems.append("transform.cmd: required (or transform.stdin)")
    for index, repo in enumerate(input_repos(spec)):
        if not isinstance(repo, str) or not _NAME_RE.match(repo):
            problems.append(f"input...pfs[{index}].repo: {repo!r} is not a valid repo name")
    problems.extend(unknown_and_mistyped(spec))
    if problems:
        raise PachydermSpecError(
            f"Invalid pipeline spec {source}"
            + (f" (pipeline {name!r})" if name else "")
            + ":\n  - "
            + "\n  - ".join(problems)
        )


def order_by_dependencies(
    specs: Iterable[tuple[str, dict[str, Any]]], existing_repos: Iterable[str]
) -> list[tuple[str, dict[str, Any]]]:
    """Sort specs so each comes after the pipelines that produce its inputs.

    Raises PachydermSpecError naming the file and repo when an input is neither
    an existing repo nor a pipeline of this batch, or when specs form a cycle.
    """
    specs = list(specs)
    existing = set(existing_repos)
    by_name = {spec["pipeline"]["name"]: (source, spec) for source, spec in specs}
    missing = [
        f"{source}: input repo {repo!r} of pipeline {spec['pipeline']['name']!r} does not exist "
        "and is not created by this batch"
        for source, spec in specs
        for repo in input_repos(spec)
        if repo not in existing and repo not in by_name
    ]
    if missing:
        raise PachydermSpecError("Unresolvable pipeline inputs:\n  - " + "\n  - ".join(missing))
    ordered: list[tuple[str, dict[str, Any]]] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            raise PachydermSpecError("Pipeline inputs form a cycle: " + " -> ".join(chain + [name]))
        state[name] = "active"
        for repo in input_repos(by_name[name][1]):
            if repo in by_name:
                visit(repo, chain + [name])
        state[name] = "done"
        ordered.append(by_name[name])

    for _, spec in specs:
        visit(spec["pipeline"]["name"], [])
    return ordered
