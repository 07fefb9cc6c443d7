"""Griffe extension for the docs build: the Sphinx markup of docstrings as Markdown.

The package's docstrings use Sphinx markup: ``:param x:`` fields, which mkdocstrings'
``sphinx`` style parses, and roles and literal blocks, which it leaves as text. This turns
each role such as :class:`X` into inline code of the name it shows (``~a.b.C`` shows ``C``,
``text <target>`` shows ``text``), and each ``.. code-block:: LANG`` or ``::`` literal
block into a fenced code block. It changes only the build's copy of the docstrings;
mkdocs.yml loads it.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:mod|func|meth|class|attr|exc|data|obj|const|ref|doc):`([^`]+)`")


def _shown(target: str) -> str:
    text = re.match(r"(.*?)\s*<[^>]+>$", target)
    if text:
        return text.group(1)
    return target.rsplit(".", 1)[-1] if target.startswith("~") else target


def _fence_literal_blocks(text: str) -> str:
    """``.. code-block:: LANG`` / a paragraph ending in ``::``, then an indented block: fenced."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = re.match(r"^(\s*)\.\. code-block::\s*(\w*)\s*$", line)
        literal = not directive and line.rstrip().endswith("::") and line.strip() != "::"
        if not (directive or literal):
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        block_end = j
        while block_end < len(lines) and (
            not lines[block_end].strip()
            or len(lines[block_end]) - len(lines[block_end].lstrip()) > indent
        ):
            block_end += 1
        while block_end > j and not lines[block_end - 1].strip():
            block_end -= 1
        if block_end == j:  # no indented block follows: leave the line alone
            out.append(line)
            i += 1
            continue
        body = textwrap.dedent("\n".join(lines[j:block_end])).split("\n")
        pad = " " * indent
        if directive:
            lang = directive.group(2)
        else:
            out += [line.rstrip()[:-1], ""]  # "text::" shows "text:"
            lang = ""
        out += [f"{pad}```{lang}", *(f"{pad}{b}" if b else "" for b in body), f"{pad}```"]
        i = block_end
    return "\n".join(out)


class SphinxRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _fence_literal_blocks(obj.docstring.value)
            obj.docstring.value = ROLE.sub(
                lambda m: f"`{_shown(m.group(1).lstrip('!'))}`".replace("`~", "`"), text
            )
