"""The version is released as it says: a CHANGELOG section, and the tag when one is made."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cpsign_airflow

REPO = Path(__file__).resolve().parents[2]


def test_the_version_has_a_changelog_section() -> None:
    headings = re.findall(r"^## (\S+)", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == "Unreleased", headings
    assert cpsign_airflow.__version__ in headings[1:], (cpsign_airflow.__version__, headings)


def test_a_release_tag_names_the_version_of_its_commit() -> None:
    """Every ``v*`` tag in the clone marks a commit whose package has that version."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "tag", "--list", "v*"], capture_output=True, text=True
    )
    if listed.returncode != 0:  # not a git checkout (an sdist): nothing to compare
        return
    for tag in listed.stdout.split():
        source = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{tag}:cpsign_airflow/__init__.py"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        [version] = re.findall(r'^__version__ = "([^"]+)"', source, re.M)
        assert tag == f"v{version}", (tag, version)
