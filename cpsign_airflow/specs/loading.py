"""Load pipeline specs from dicts, JSON/YAML files or folders, rendering Jinja.

Specs are templates so one set serves many workflows
(``"name": "{{ workflow_name }}-ingestion"``). Rendering happens on the file
text, before parsing, so a template can fill any value, including numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cpsign_airflow.exceptions import PachydermSpecError

SPEC_SUFFIXES = (".json", ".yaml", ".yml")


def _render(text: str, variables: Mapping[str, Any], source: str, env: Any = None) -> str:
    import jinja2

    if env is None:  # outside a task: a plain, strict environment
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.from_string(text).render(**variables)
    except jinja2.TemplateError as err:
        raise PachydermSpecError(f"Pipeline spec {source}: template error: {err}") from None


def _parse(text: str, source: str) -> Any:
    import yaml

    try:
        if source.endswith(".json"):
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        raise PachydermSpecError(f"Pipeline spec {source} is not valid JSON/YAML: {err}") from None


def _render_obj(obj: Any, variables: Mapping[str, Any], source: str, env: Any = None) -> Any:
    """Render string leaves of an in-memory spec (dicts given directly)."""
    if isinstance(obj, str) and ("{{" in obj or "{%" in obj):
        return _render(obj, variables, source, env)
    if isinstance(obj, dict):
        return {k: _render_obj(v, variables, source, env) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_render_obj(v, variables, source, env) for v in obj]
    return obj


def expand_sources(specs: Any) -> list[tuple[str, Any]]:
    """Turn the operator's ``specs`` argument into (source label, dict-or-path) items."""
    if isinstance(specs, (dict, str, Path)):
        specs = [specs]
    items: list[tuple[str, Any]] = []
    for index, item in enumerate(specs):
        if isinstance(item, dict):
            items.append((f"<spec #{index}>", item))
            continue
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES)
            if not files:
                raise PachydermSpecError(f"Spec folder {str(path)!r} holds no .json/.yaml files")
            items.extend((str(p), p) for p in files)
        elif path.is_file():
            items.append((str(path), path))
        else:
            raise PachydermSpecError(f"Pipeline spec file {str(path)!r} does not exist")
    return items


def load_specs(
    specs: Any, variables: Mapping[str, Any], *, env: Any = None
) -> list[tuple[str, dict[str, Any]]]:
    """Rendered spec dicts with their source labels; a file may hold a list of specs.

    ``env`` is the Jinja environment to render with (a task's, see
    :mod:`cpsign_airflow.specs.templating`); by default a strict plain one.
    """
    loaded: list[tuple[str, dict[str, Any]]] = []
    for source, item in expand_sources(specs):
        if isinstance(item, Path):
            text = item.read_text(encoding="utf-8")
            parsed = _parse(_render(text, variables, source, env), source)
        else:
            parsed = _render_obj(item, variables, source, env)
        entries: Iterable[Any] = parsed if isinstance(parsed, list) else [parsed]
        for entry in entries:
            if not isinstance(entry, dict):
                raise PachydermSpecError(f"Pipeline spec {source} is not an object")
            loaded.append((source, entry))
    return loaded
