"""MkDocs hook: the reference pages, generated from cpsign_airflow/provider.yaml at build time.

- ``reference/api/<kind>.md``: one ``:::`` (mkdocstrings) block per public class of every
  module provider.yaml registers as a hook, operator, sensor or trigger, plus its extra
  links and notifiers; a module's public classes are those in its ``__all__``, else every
  class not named ``_…`` (read with ``ast``: nothing is imported).
- ``reference/connection.md``: the connection types, their fields and form behaviour.
- ``reference/configuration.md``: every ``[cpsign]`` option (and any other section).

The pages exist only in the build (``File.generated``): nothing is written to docs/, so
there is nothing to commit or to get out of date. Output depends only on provider.yaml and
the modules' source, in their order. Used by mkdocs.yml (``hooks:``); ``make docs``.
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_YAML = ROOT / "cpsign_airflow" / "provider.yaml"
REPO_URL = "https://github.com/pharmbio/cpsign-airflow/blob/main"

log = logging.getLogger("mkdocs.hooks.provider_reference")

# (page, title, provider.yaml key of python-modules lists, provider.yaml key of class paths)
API_PAGES = [
    ("hooks", "Hooks", "hooks", None),
    ("operators", "Operators", "operators", None),
    ("sensors", "Sensors", "sensors", None),
    ("triggers", "Triggers", "triggers", None),
    ("links", "Extra links", None, "extra-links"),
    ("notifications", "Notifiers", None, "notifications"),
]


def load_provider() -> dict[str, Any]:
    return yaml.safe_load(PROVIDER_YAML.read_text())


def module_path(module: str) -> Path:
    base = ROOT / Path(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def public_classes(module: str) -> list[str]:
    """Classes defined in ``module`` that it exports (``__all__``) or does not name ``_…``."""
    tree = ast.parse(module_path(module).read_text())
    classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
    exported = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            exported = set(ast.literal_eval(node.value))
    if exported is not None:
        return [c for c in classes if c in exported]
    return [c for c in classes if not c.startswith("_")]


def inherited_members(module: str, cls: str) -> list[str]:
    """Public methods ``cls`` inherits from classes of this package (the mixins a hook is
    composed of, such as PachydermHook's), for mkdocstrings' ``inherited_members``:
    the page lists them as the class's own, and nothing inherited from Airflow."""
    tree = ast.parse(module_path(module).read_text())
    where = {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cpsign_airflow")
        for alias in node.names
    }
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    where.update(dict.fromkeys(classes, module))
    own = {
        n.name for n in classes[cls].body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    names: list[str] = []
    for base in classes[cls].bases:
        if not (isinstance(base, ast.Name) and base.id in where):
            continue
        base_tree = ast.parse(module_path(where[base.id]).read_text())
        [base_def] = [
            n for n in base_tree.body if isinstance(n, ast.ClassDef) and n.name == base.id
        ]
        defined = [
            n.name
            for n in base_def.body
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and not n.name.startswith("_")
        ]
        for name in defined + inherited_members(where[base.id], base.id):
            if name not in own and name not in names:
                names.append(name)
    return names


def _modules(provider: dict[str, Any], key: str) -> list[tuple[str, list[str]]]:
    """(integration, modules) of a provider.yaml list such as ``operators``."""
    return [(e["integration-name"], list(e["python-modules"])) for e in provider.get(key, [])]


def api_page(provider: dict[str, Any], title: str, key: str | None, paths_key: str | None) -> str:
    lines = [f"# {title}", ""]
    lines += [
        f"Generated from the `{key or paths_key}` entries of `cpsign_airflow/provider.yaml` and "
        "the classes' docstrings.",
        "",
    ]
    sections: list[tuple[str, list[str]]] = []  # (module, qualified class names)
    if key:
        for integration, modules in _modules(provider, key):
            for module in modules:
                classes = public_classes(module)
                if not classes:
                    log.warning("provider.yaml %s: %s has no public class", key, module)
                sections.append((module, [f"{module}.{c}" for c in classes]))
                log.debug("%s: %s (%s)", key, module, integration)
    else:
        by_module: dict[str, list[str]] = {}
        for path in provider.get(paths_key, []):
            module, _, name = path.rpartition(".")
            if name not in public_classes(module):
                log.warning("provider.yaml %s: no public class %s", paths_key, path)
            by_module.setdefault(module, []).append(path)
        sections = list(by_module.items())
    for module, paths in sections:
        lines += [
            f"## `{module}`",
            "",
            f"::: {module}",
            "    options:",
            "      members: false",
            "      show_root_heading: false",
            "      show_root_toc_entry: false",
            "",
        ]
        for path in paths:
            lines += [f"::: {path}", "    options:", "      heading_level: 3"]
            inherited = inherited_members(*path.rsplit(".", 1))
            if inherited:
                lines.append(f"      inherited_members: {json.dumps(inherited)}")
            lines.append("")
    return "\n".join(lines)


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(value: Any) -> str:
    """A value as inline code: strings as they are, others as JSON (``false``, ``30``)."""
    if value is None:
        return ""
    return f"`{value if isinstance(value, str) else json.dumps(value)}`"


def connection_page(provider: dict[str, Any]) -> str:
    lines = [
        "# Connection reference",
        "",
        "Generated from the `connection-types` of `cpsign_airflow/provider.yaml`: the "
        "fields of the connection form Airflow renders for each type, without importing "
        "the hook. Examples of whole connections, as URIs and JSON: "
        "[Deploying, Connections](../deployment.md#3-connections).",
        "",
    ]
    for ct in provider.get("connection-types", []):
        ctype = ct["connection-type"]
        behaviour = ct.get("ui-field-behaviour", {})
        relabel = behaviour.get("relabeling", {})
        placeholders = behaviour.get("placeholders", {})
        hidden = behaviour.get("hidden-fields", [])
        lines += [
            f"## `{ctype}`: {ct['hook-name']}",
            "",
            f"Hook: [`{ct['hook-class-name']}`][{ct['hook-class-name']}]. "
            f"Connection URI scheme: `{ctype}://`, e.g. "
            f"`AIRFLOW_CONN_{ctype.upper()}_DEFAULT='{ctype}://:TOKEN@host:port?tls=true'`.",
            "",
            "### Standard fields",
            "",
            "| field | shown as | placeholder |",
            "|---|---|---|",
        ]
        for field in ("host", "port", "login", "password", "schema", "extra"):
            if field in hidden:
                continue
            lines.append(
                f"| `{field}` | {_cell(relabel.get(field, field))} | "
                f"{_cell(placeholders.get(field, ''))} |"
            )
        if hidden:
            lines += ["", "Hidden in the form: " + ", ".join(f"`{h}`" for h in hidden) + "."]
        lines += [
            "",
            "### Extra fields",
            "",
            "Set in the form, or as keys of `extra` (JSON), or as URI query parameters.",
            "",
            "| key | label | type | default | description |",
            "|---|---|---|---|---|",
        ]
        for name, field in ct.get("conn-fields", {}).items():
            schema = field.get("schema", {})
            types = schema.get("type")
            types = [t for t in (types if isinstance(types, list) else [types]) if t != "null"]
            lines.append(
                f"| `{name}` | {_cell(field.get('label', ''))} | {', '.join(types)} | "
                f"{_code(schema.get('default'))} | {_cell(field.get('description', ''))} |"
            )
        lines.append("")
    return "\n".join(lines)


def configuration_page(provider: dict[str, Any]) -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the `config` of `cpsign_airflow/provider.yaml`. Set an option in "
        "`airflow.cfg` or as the environment variable `AIRFLOW__<SECTION>__<OPTION>`; "
        "`airflow config list --section cpsign` shows the values in force.",
        "",
    ]
    for section, spec in provider.get("config", {}).items():
        lines += [f"## `[{section}]`", "", " ".join(spec.get("description", "").split()), ""]
        for option, opt in spec.get("options", {}).items():
            env = f"AIRFLOW__{section.upper()}__{option.upper()}"
            lines += [
                f"### `{option}`",
                "",
                " ".join(opt.get("description", "").split()),
                "",
                "| | |",
                "|---|---|",
                f"| environment variable | `{env}` |",
                f"| type | {opt.get('type', 'string')} |",
                f"| default | {_code(opt.get('default')) or '(unset)'} |",
            ]
            if opt.get("example") is not None:
                lines.append(f"| example | `{opt['example']}` |")
            if opt.get("version_added"):
                lines.append(f"| added in | {opt['version_added']} |")
            lines.append("")
    return "\n".join(lines)


def pages() -> dict[str, str]:
    """Generated page path (relative to docs/) -> Markdown."""
    provider = load_provider()
    out = {
        f"reference/api/{page}.md": api_page(provider, title, key, paths_key)
        for page, title, key, paths_key in API_PAGES
    }
    out["reference/connection.md"] = connection_page(provider)
    out["reference/configuration.md"] = configuration_page(provider)
    return out


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, content in pages().items():
        if files.get_file_from_path(path) is not None:
            log.warning("%s exists in docs/ but is generated: delete it", path)
            continue
        files.append(File.generated(config, path, content=content))
    return files


def on_config(config: Any) -> Any:
    # Rebuild when provider.yaml changes under `mkdocs serve`.
    config.setdefault("watch", [])
    if str(PROVIDER_YAML) not in config["watch"]:
        config["watch"].append(str(PROVIDER_YAML))
    return config
