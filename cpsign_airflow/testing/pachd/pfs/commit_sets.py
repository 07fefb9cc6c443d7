"""PFS's commit sets (pachd's global ids): a set's commits, its provenance from other
sets, and the streams over them (src/server/pfs/server/server_commit_set.go;
pfsdb.CommitSetProvenance, src/internal/pfsdb/commit_provenance.go).

A part of :class:`.models.PfsBackend` (its base), on the backend's ``commit_sets``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from .. import errors
from ..events import Events
from .records import CommitRec, RepoRec, now


class CommitSets:
    """Reading the commit sets: ``commit_sets`` maps a set id to its commits, in creation
    order."""

    commit_sets: dict[str, list[CommitRec]]
    events: Events

    def ordered_commit_set(self, commit_set_id: str) -> list[CommitRec]:
        """The commits of a set in provenance (topological) order."""
        commits = list(self.commit_sets.get(commit_set_id, []))
        members = {id(c) for c in commits}
        result: list[CommitRec] = []
        placed: set[int] = set()
        while commits:
            for c in commits:
                deps = [p for p in c.provenance if id(p) in members and id(p) not in placed]
                if not deps:
                    result.append(c)
                    placed.add(id(c))
                    commits.remove(c)
                    break
            else:  # cycle (cannot happen); keep creation order
                result.extend(commits)
                break
        return result

    def commit_set_provenance(self, commit_set_id: str) -> list[CommitRec]:
        """Commits of other sets in the (transitive) provenance of the set's commits.

        pachd's ``pfsdb.CommitSetProvenance`` (src/internal/pfsdb/commit_provenance.go):
        e.g. the pipelines' spec commits, and an input's head from an earlier set.
        """
        found: list[CommitRec] = []
        seen: set[int] = set()
        stack = [p for c in self.commit_sets.get(commit_set_id, []) for p in c.provenance]
        while stack:
            commit = stack.pop()
            if id(commit) in seen:
                continue
            seen.add(id(commit))
            if commit.id != commit_set_id:
                found.append(commit)
            stack.extend(commit.provenance)
        return sorted(found, key=lambda c: c.started)

    def commit_set_alias(self, repo: RepoRec, commit_set_id: str) -> CommitRec | None:
        """``repo``'s commit in the provenance of set ``commit_set_id`` (pachd's
        ``ResolveCommitProvenance``: a commit picked by a set id its repo has no commit in)."""
        for commit in self.commit_set_provenance(commit_set_id):
            if commit.repo is repo:
                return commit
        return None

    def commit_set(self, commit_set_id: str) -> list[CommitRec]:
        """What InspectCommitSet lists: the set's provenance from other sets, then its own
        commits, topologically sorted (``inspectCommitSetImmediateTx`` and
        ``TopologicalSort``, src/server/pfs/server/server_commit_set.go)."""
        own = self.ordered_commit_set(commit_set_id)
        if not own:
            return []
        commits = [*self.commit_set_provenance(commit_set_id), *own]
        members = {id(c) for c in commits}
        result: list[CommitRec] = []
        visited: set[int] = set()

        def visit(commit: CommitRec) -> None:
            if id(commit) in visited:
                return
            for prov in commit.provenance:
                if id(prov) in members and id(prov) not in visited:
                    visit(prov)
            result.append(commit)
            visited.add(id(commit))

        for commit in commits:
            visit(commit)
        return result

    async def inspect_commit_set(self, set_id: str, wait: bool) -> AsyncIterator[CommitRec]:
        """pachd 2.12 (server_commit_set.go): the set's commits and, from other sets, the
        commits in their provenance (the pipelines' spec commits, ...), in topological
        order; with ``wait``, the finished ones at once, then each other as it finishes."""
        commits = self.commit_set(set_id)
        if not commits:
            raise errors.commit_set_not_found(set_id)
        pending = [c for c in commits if wait and not c.is_finished]
        for commit in commits:
            if commit not in pending:
                yield commit
        for commit in pending:
            await self.events.wait_for(lambda c=commit: c.is_finished, lambda c=commit: (c,))
            yield commit

    def list_commit_sets(self, project: str | None) -> Iterator[tuple[str, list[CommitRec]]]:
        """Newest first: each set's id and what InspectCommitSet lists of it (read as the
        stream goes)."""
        sets = sorted(self.commit_sets.items(), key=lambda kv: kv[1][0].started if kv[1] else now())
        for set_id, own in reversed(sets):
            if project is not None and not any(c.repo.project == project for c in own):
                continue
            yield set_id, self.commit_set(set_id)
