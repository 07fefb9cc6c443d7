"""Spec templates rendered the way Airflow renders a task's templates.

An operator that takes pipeline specs (``specs``: dicts, files or folders, itself a
template field) renders them with the task's own Jinja environment, so the DAG's
``user_defined_macros``, ``user_defined_filters`` and ``template_searchpath`` work in
spec files as in any other template. Two differences from Airflow's own rendering,
both because a spec is a contract with pachd: undefined variables are errors
(``StrictUndefined``), and ``spec_vars`` (rendered first) are variables of the spec
templates alongside the task context.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

SPECS_FIELD = "specs"


class SpecTemplatesMixin:
    """For operators with ``specs`` and ``spec_vars`` template fields."""

    specs: Any
    spec_vars: dict[str, Any]

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        """Render every template field, then ``specs`` with ``spec_vars`` added to the context."""
        if not jinja_env:
            jinja_env = self.get_template_env()  # type: ignore[attr-defined]
        others = [f for f in self.template_fields if f != SPECS_FIELD]  # type: ignore[attr-defined]
        self._do_render_template_fields(self, others, context, jinja_env, set())  # type: ignore[attr-defined]
        if SPECS_FIELD in self.template_fields:  # type: ignore[attr-defined]
            variables = {**context, **(self.spec_vars or {})}
            strict = jinja_env.overlay(undefined=_strict_undefined())
            self.specs = self.render_template(self.specs, variables, strict)  # type: ignore[attr-defined]

    def spec_environment(self) -> Any:
        """The task's Jinja environment, strict about undefined variables."""
        return _strict(self.get_template_env())  # type: ignore[attr-defined]

    def load_task_specs(self, context: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Load ``specs`` (paths relative to the DAG's ``template_searchpath`` too), rendered."""
        from cpsign_airflow.specs.loading import load_specs

        if not self.specs:
            raise ValueError(f"{self.task_id}: 'specs' rendered empty")  # type: ignore[attr-defined]
        env = self.spec_environment()
        sources = _resolve(self.specs, _search_path(env))
        return load_specs(sources, {**context, **(self.spec_vars or {})}, env=env)


def _strict(env: Any) -> Any:
    """``env`` with StrictUndefined; rendering to text even for a native-objects DAG.

    A DAG with ``render_template_as_native_obj`` has a NativeEnvironment, which
    would turn a JSON spec file into a dict before it is parsed; spec files are
    text, so they get a sandboxed text environment with the same loader, macros,
    filters and tests.
    """
    import jinja2
    from jinja2.nativetypes import NativeEnvironment
    from jinja2.sandbox import SandboxedEnvironment

    if not isinstance(env, NativeEnvironment):
        return env.overlay(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text = SandboxedEnvironment(
        loader=env.loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        extensions=[type(ext) for ext in env.extensions.values()],
    )
    text.filters.update(env.filters)
    text.tests.update(env.tests)
    text.globals.update(env.globals)
    return text


def _strict_undefined() -> Any:
    import jinja2

    return jinja2.StrictUndefined


def _search_path(env: Any) -> list[str]:
    loader = getattr(env, "loader", None)
    return list(getattr(loader, "searchpath", None) or [])


def _resolve(specs: Any, search_path: list[str]) -> Any:
    """Relative spec paths looked up in the template search path, as Airflow does for files."""

    def one(item: Any) -> Any:
        if isinstance(item, (str, Path)) and not Path(item).is_absolute():
            for folder in search_path:
                candidate = Path(folder) / item
                if candidate.exists():
                    return str(candidate)
        return item

    if isinstance(specs, (list, tuple)):
        return [one(item) for item in specs]
    return one(specs)
