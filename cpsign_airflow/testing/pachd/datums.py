"""Datums as pachd's worker builds them: globs, cross, union, join, group; ids and hashes.

pachd (src/server/worker/datum) turns a pipeline's input into a list of datums,
each a list of *inputs*: one matched path of one pfs input, with every file
under it. A datum's **id** depends on the input names and matched paths only; its
**hash** also covers the files' contents and the pipeline's salt, so a datum
whose hash is unchanged since the parent job can be skipped.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pachyderm_sdk.api import pps

from .filestore import FileData


def _blake2b() -> hashlib._Hash:
    return hashlib.blake2b(digest_size=32)  # pachd's pfs.NewHash: BLAKE2b-256


@dataclass(frozen=True)
class DatumInput:
    """One pfs input's share of a datum: a glob match and the files under it."""

    name: str
    repo: str
    branch: str
    path: str  # the matched path: "/" for the root, "/dir/" for a directory
    files: Mapping[str, FileData] = field(compare=False, hash=False)  # commit path -> data
    join_on: str = ""
    group_by: str = ""
    commit_id: str = ""

    @property
    def key(self) -> str:
        return self.join_on or self.group_by

    @property
    def mount_path(self) -> str:
        """The ``<name>`` variable: ``filepath.Join("/pfs", name, path)``."""
        return "/pfs/" + self.name + ("/" + self.path.strip("/") if self.path.strip("/") else "")

    def digest(self) -> bytes:
        """A file's content hash; a directory's hash covers its files' hashes in path order."""
        if not self.path.endswith("/") and len(self.files) == 1:
            return next(iter(self.files.values())).digest()
        h = _blake2b()
        for path in sorted(self.files):
            h.update(self.files[path].digest())
        return h.digest()


def _field(h: hashlib._Hash, value: str) -> None:
    data = value.encode()
    h.update(data)
    h.update(len(data).to_bytes(8, "big"))


@dataclass
class Datum:
    inputs: list[DatumInput]

    @property
    def id(self) -> str:
        """pachd's DatumID: BLAKE2b-256 over each input's name, repo, branch and path."""
        h = _blake2b()
        for inp in self.inputs:
            for value in (inp.name, inp.repo, inp.branch, inp.path):
                _field(h, value)
        return h.hexdigest()

    def hash(self, salt: str) -> str:
        """pachd's HashDatum, the skipping key: the id, the inputs' hashes and the salt."""
        h = _blake2b()
        h.update(self.id.encode())
        for inp in self.inputs:
            h.update(inp.digest())
        h.update(salt.encode())
        return h.hexdigest()


_DOT = "[^/]"  # ``*`` and ``?`` never cross the separator
_BOUNDARY = "\x00b"  # ohmyglob's markers: text, ``*`` and ``**`` bound a negation's scope
_CLOSE_NEG = "\x00n"


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A PFS glob compiled as pachd's glob library (ohmyglob) does, as an anchored regex.

    ``*`` / ``?`` stop at ``/``, ``**`` does not; ``[...]`` (``!``/``^`` negates), ``{a,b}``,
    ``\\`` escapes. Only parentheses capture: ``(a|b)`` (= ``@(...)``), ``*(...)``,
    ``+(...)``, ``?(...)``, ``!(...)``, numbered left to right for ``join_on``/``group_by``
    (``"/(*).txt"`` with ``"$1"``); a bare wildcard captures nothing.
    """
    regex, _ = _glob_sequence(pattern, 0, "")
    index = regex.find(_CLOSE_NEG + ")")
    if index > 0:  # a negation matches up to the next boundary, else to the end
        regex = regex.replace(_CLOSE_NEG, "" if _BOUNDARY in regex[index:] else r"\Z")
    return re.compile(r"\A" + regex.replace(_BOUNDARY, "") + r"\Z", re.S)


def _glob_sequence(p: str, i: int, stops: str) -> tuple[str, int]:
    out: list[str] = []
    while i < len(p) and p[i] not in stops:
        ch, nxt = p[i], p[i + 1 : i + 2]
        if ch == "\\" and nxt:
            out.append(re.escape(nxt) + _BOUNDARY)
            i += 2
        elif ch == "*" and nxt == "*" and p[i + 2 : i + 3] != "(":
            out.append(".*" + _BOUNDARY)
            i += 2
        elif ch == "(" or (ch in "@*+?!^" and nxt == "("):
            quantifier = "@" if ch == "(" else ch
            alts, i = _glob_alternatives(p, i + (1 if ch == "(" else 2), "|", ")")
            if quantifier in "!^":
                inner = (_CLOSE_NEG + "|").join(alts) + _CLOSE_NEG
                out.append(f"((?:(?!(?:{inner})){_DOT}*))")
            elif quantifier == "@":
                out.append("(" + "|".join(alts) + ")")
            else:
                out.append("((?:" + "|".join(alts) + ")" + quantifier + ")")
        elif ch == "*":
            out.append(_DOT + "*" + _BOUNDARY)
            i += 1
        elif ch == "?":
            out.append(_DOT)
            i += 1
        elif ch == "[" and "]" in p[i + 1 :]:
            end = p.index("]", i + 1)
            body, negate = p[i + 1 : end], ""
            if body[:1] in ("!", "^"):
                body, negate = body[1:], "^"
            if len(body) == 3 and body[1] == "-":
                out.append(f"[{negate}{re.escape(body[0])}-{re.escape(body[2])}]")
            else:
                out.append(f"[{negate}{re.escape(body)}]")
            i = end + 1
        elif ch == "{":
            alts, i = _glob_alternatives(p, i + 1, ",", "}")
            out.append("(?:" + "|".join(alts) + ")")
        else:
            out.append(re.escape(ch) + _BOUNDARY)
            i += 1
    return "".join(out), i


def _glob_alternatives(p: str, i: int, sep: str, close: str) -> tuple[list[str], int]:
    alts: list[str] = []
    while True:
        part, i = _glob_sequence(p, i, sep + close)
        alts.append(part)
        if i >= len(p):
            raise ValueError(f"glob {p!r}: unclosed {close!r}")
        if p[i] == close:
            return alts, i + 1
        i += 1


def normalize_glob(pattern: str) -> str:
    stripped = (pattern or "/").strip("/")
    return "/" + stripped if stripped else "/"


def glob_paths(files: Mapping[str, FileData], pattern: str) -> list[str]:
    """Paths (files and implied directories) a PFS glob matches, sorted."""
    pattern = normalize_glob(pattern)
    if pattern == "/":
        return ["/"]
    candidates: set[str] = set()
    for path in files:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            candidates.add("/" + "/".join(parts[:depth]))
    regex = glob_regex(pattern)
    return sorted(p for p in candidates if regex.match(p))


def files_under(files: Mapping[str, FileData], path: str) -> dict[str, FileData]:
    if path == "/":
        return dict(files)
    prefix = path.rstrip("/") + "/"
    return {p: fd for p, fd in files.items() if p == path or p.startswith(prefix)}


def _expand(template: str, match: re.Match[str]) -> str:
    """ohmyglob's Replace, as pachd computes join_on/group_by: ``$n`` or ``${n}`` is capture
    group n (``$0`` the whole path, an absent group nothing), ``$$`` is ``$``."""
    groups = [match.group(0), *match.groups(default="")]
    out: list[str] = []
    i = 0
    while (j := template.find("$", i)) >= 0:
        out.append(template[i:j])
        if template.startswith("$$", j):
            out.append("$")
            i = j + 2
            continue
        ref = re.match(r"\$(?:\{([0-9]+)\}|([0-9]+))", template[j:])
        if ref is None:  # malformed: a literal "$"
            out.append("$")
            i = j + 1
            continue
        name = ref.group(1) or ref.group(2)
        num = int(name) if name == "0" or not name.startswith("0") else -1
        if 0 <= num < len(groups):
            out.append(groups[num])
        i = j + ref.end()
    out.append(template[i:])
    return "".join(out)


@dataclass
class InputCommit:
    id: str
    files: Mapping[str, FileData]


def _pfs_datums(pin: pps.PfsInput, commit: InputCommit | None) -> list[DatumInput]:
    """One datum input per glob match. An empty commit has no paths, so no datum, even
    for ``/`` (pachd adds directories only as parents of files)."""
    files = commit.files if commit is not None else {}
    if not files:
        return []
    pattern = normalize_glob(pin.glob)
    regex = glob_regex(pattern)
    result = []
    for path in glob_paths(files, pattern):
        is_dir = path == "/" or path not in files
        m = regex.match(path)
        result.append(
            DatumInput(
                name=pin.name or pin.repo,
                repo=pin.repo,
                branch=pin.branch or "master",
                path=path if not is_dir or path == "/" else path + "/",
                files=files_under(files, path),
                join_on=_expand(pin.join_on, m) if pin.join_on and m else "",
                group_by=_expand(pin.group_by, m) if pin.group_by and m else "",
                commit_id=commit.id if commit is not None else "",
            )
        )
    return result


def build(input_spec: pps.Input | None, commits: Mapping[str, InputCommit]) -> list[Datum]:
    """The datums of ``input_spec`` over ``commits`` (input name -> its input commit)."""
    if input_spec is None:
        return []
    return [Datum(list(inputs)) for inputs in _build(input_spec, commits)]


def _input_name(spec: pps.Input) -> str:
    if spec.pfs is not None and spec.pfs.repo:
        return spec.pfs.name or spec.pfs.repo
    return ""


def _sorted(subs: list[pps.Input]) -> list[pps.Input]:
    """pachd's SortInput: a stable sort of compound inputs' children by input name."""
    return sorted(subs, key=_input_name)


def _build(spec: pps.Input, commits: Mapping[str, InputCommit]) -> list[tuple[DatumInput, ...]]:
    if spec.pfs is not None and spec.pfs.repo:
        return [(d,) for d in _pfs_datums(spec.pfs, commits.get(_input_name(spec)))]
    if spec.cross:
        parts = [_build(sub, commits) for sub in _sorted(spec.cross)]
        return [tuple(itertools.chain.from_iterable(combo)) for combo in itertools.product(*parts)]
    if spec.union:
        return [d for sub in _sorted(spec.union) for d in _build(sub, commits)]
    if spec.join:
        return _join(_sorted(spec.join), commits)
    if spec.group:
        return _group(_sorted(spec.group), commits)
    return []


def _keyed(sub: pps.Input, commits: Mapping[str, InputCommit]) -> list[DatumInput]:
    if sub.pfs is None or not sub.pfs.repo:
        raise ValueError("join and group inputs must be pfs inputs")
    return [d[0] for d in _build(sub, commits)]


def _join(subs: list[pps.Input], commits: Mapping[str, InputCommit]) -> list:
    """Cross the matches of each key across inputs; outer_join inputs keep unmatched keys."""
    per_input = [_keyed(sub, commits) for sub in subs]
    keys = sorted({d.key for matches in per_input for d in matches})
    result = []
    for key in keys:
        hits = [[d for d in matches if d.key == key] for matches in per_input]
        if all(hits):
            result.extend(itertools.product(*hits))
            continue
        # some input lacks the key: only the outer_join inputs that have it make a datum
        outer = [h for sub, h in zip(subs, hits, strict=True) if h and sub.pfs.outer_join]
        if outer:
            result.extend(itertools.product(*outer))
    return result


def _group(subs: list[pps.Input], commits: Mapping[str, InputCommit]) -> list:
    """One datum per group_by value, holding every match with that value from every input."""
    matches = [d for sub in subs for d in _keyed(sub, commits)]
    keys = sorted({d.key for d in matches})
    return [tuple(d for d in matches if d.key == key) for key in keys]


def pfs_inputs(input_spec: pps.Input | None) -> list[pps.PfsInput]:
    if input_spec is None:
        return []
    if input_spec.pfs is not None and input_spec.pfs.repo:
        return [input_spec.pfs]
    result: list[pps.PfsInput] = []
    for sub in [*input_spec.cross, *input_spec.union, *input_spec.join, *input_spec.group]:
        result.extend(pfs_inputs(sub))
    return result
