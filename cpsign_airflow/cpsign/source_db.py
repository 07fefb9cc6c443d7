"""The source database: where a configuration's query may run, what it may be, how it is read.

Whoever may trigger a training run writes the query, so the query is held to what
ingestion needs, reading, and the password goes only where an administrator pointed it:

* :func:`statement_problems` accepts exactly one SELECT (a UNION of SELECTs too),
  parsed by sqlglot in the source's dialect: no second statement, no DML or DDL
  anywhere (not in a CTE either), no ``SELECT … INTO``, no ``FOR UPDATE``, no
  MySQL executable comment (``/*! … */``, which MySQL runs).
* :class:`SourceDatabase` holds the coordinates (dialect, host, port, user, database)
  an administrator set in an Airflow connection; :func:`coordinate_problems` names
  every field of a configuration's ``preprocessing.database`` that differs from them.
* :func:`read_only_connection` is the one way the query reaches a database, for the
  pre-flight check and for ingestion alike: MySQL/MariaDB with multi-statements off
  in the driver and ``START TRANSACTION READ ONLY``, PostgreSQL with ``SET
  TRANSACTION READ ONLY``, SQLite opened ``mode=ro`` with ``query_only``; always
  rolled back.

Nothing here imports Airflow; sqlglot and SQLAlchemy are imported when used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

QUERY_FIELD = "preprocessing.query.database_query"
DATABASE_FIELD = "preprocessing.database"
DIALECTS = ("mysql", "postgresql", "sqlite")
DEFAULT_PORTS = {"mysql": 3306, "postgresql": 5432}
_SQLGLOT_DIALECTS = {"mysql": "mysql", "postgresql": "postgres", "sqlite": "sqlite"}
#: Airflow connection types of each dialect.
CONN_TYPES = {
    "mysql": "mysql",
    "postgres": "postgresql",
    "postgresql": "postgresql",
    "sqlite": "sqlite",
}
#: Environment of the ingestion stage: the coordinates the setup DAG took from the connection.
PIN_ENV = {
    "dialect": "SOURCE_DB_DIALECT",
    "host": "SOURCE_DB_HOST",
    "port": "SOURCE_DB_PORT",
    "user": "SOURCE_DB_USER",
    "db_name": "SOURCE_DB_NAME",
}


class SourceDatabaseError(ValueError):
    """The source database or its query is refused; the message names the field or file."""


# ---------------------------------------------------------------------------- the statement


def _placements(query: str) -> list[str]:
    """The texts ingestion may run: the ``{}`` placeholder as nothing and as a LIMIT."""
    return [query.replace("{}", ""), query.replace("{}", " LIMIT 1")]


def statement_problems(query: Any, dialect: str = "mysql") -> list[str]:
    """Why ``query`` is not exactly one read-only SELECT in ``dialect`` (empty: it is).

    Checked with the ``{}`` placeholder both empty and as `` LIMIT n``, since
    ingestion runs one or the other. An optional trailing ``;`` is allowed.
    """
    if not isinstance(query, str) or not query.strip():
        return []  # the schema reports a missing or non-string query
    if dialect not in DIALECTS:
        return []  # the schema reports an unknown dialect
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    if "/*!" in query or "/*M!" in query:
        return [
            f"{QUERY_FIELD}: must not contain a MySQL executable comment ('/*!'), "
            "which the server would run as SQL"
        ]
    for text in dict.fromkeys(_placements(query)):
        statement = text.strip()
        if statement.endswith(";"):
            statement = statement[:-1]
        try:
            parsed = [e for e in sqlglot.parse(statement, read=_SQLGLOT_DIALECTS[dialect]) if e]
        except SqlglotError as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            return [
                f"{QUERY_FIELD}: is not one SELECT statement that parses as {dialect} ({first})"
            ]
        if len(parsed) != 1:
            return [
                f"{QUERY_FIELD}: must be exactly one SELECT statement, found {len(parsed)} "
                "statements"
            ]
        root = parsed[0]
        while isinstance(root, exp.Subquery):
            root = root.this
        if not isinstance(root, (exp.Select, exp.SetOperation)):
            return [f"{QUERY_FIELD}: must be a SELECT statement, not {root.key.upper()}"]
        for node in root.walk():
            refused = _refused(node, exp)
            if refused:
                return [f"{QUERY_FIELD}: must only read; it contains {refused}"]
    return []


def _refused(node: Any, exp: Any) -> str | None:
    """What a node of a SELECT's tree does that a read-only query must not, or None."""
    if isinstance(node, exp.Into):
        return "SELECT ... INTO"
    if isinstance(node, exp.Lock):
        return "a locking clause (FOR UPDATE/SHARE)"
    writes = (exp.DML, exp.DDL, exp.Command, exp.Pragma, exp.Set, exp.Use, exp.Transaction)
    writes += tuple(
        getattr(exp, name)
        for name in ("Attach", "Detach", "Copy", "LoadData")
        if hasattr(exp, name)
    )
    if isinstance(node, writes):
        return f"a {node.key.upper()} statement"
    return None


def check_statement(query: Any, dialect: str = "mysql") -> None:
    """Raise :class:`SourceDatabaseError` unless ``query`` is one read-only SELECT."""
    problems = statement_problems(query, dialect)
    if problems:
        raise SourceDatabaseError(problems[0])


# -------------------------------------------------------------------------- the coordinates


@dataclass(frozen=True)
class SourceDatabase:
    """Where the source query runs: what an administrator's connection says, never a form.

    For SQLite ``db_name`` is the database file's absolute path; host, port and
    user are not used.
    """

    dialect: str
    db_name: str
    host: str | None = None
    port: int | None = None
    user: str | None = None

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise SourceDatabaseError(
                f"source database dialect {self.dialect!r}: not one of {', '.join(DIALECTS)}"
            )
        if not self.db_name:
            raise SourceDatabaseError("source database: names no database (or SQLite file)")

    @property
    def effective_port(self) -> int | None:
        return None if self.dialect == "sqlite" else (self.port or DEFAULT_PORTS[self.dialect])

    def describe(self) -> str:
        """``mysql chembl@db:3306/chembl_24``, ``sqlite file /path``: never a password."""
        if self.dialect == "sqlite":
            return f"sqlite file {self.db_name}"
        user = f"{self.user}@" if self.user else ""
        return (
            f"{self.dialect} {user}{self.host or 'localhost'}:{self.effective_port}/{self.db_name}"
        )

    def as_configuration(self) -> dict[str, Any]:
        """The configuration's ``preprocessing.database`` block for these coordinates."""
        if self.dialect == "sqlite":
            return {"dialect": "sqlite", "host": "-", "user": "-", "db_name": self.db_name}
        block: dict[str, Any] = {
            "dialect": self.dialect,
            "host": self.host or "localhost",
            "user": self.user or "",
            "db_name": self.db_name,
        }
        if self.port:
            block["port"] = self.port
        return block

    def pin_env(self) -> dict[str, str]:
        """The ingestion stage's environment (:data:`PIN_ENV`) for these coordinates."""
        values = {
            "dialect": self.dialect,
            "host": self.host or "",
            "port": str(self.effective_port or ""),
            "user": self.user or "",
            "db_name": self.db_name,
        }
        return {PIN_ENV[key]: value for key, value in values.items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SourceDatabase:
        """The coordinates the setup DAG pinned in the ingestion pipeline's environment."""
        environ = os.environ if environ is None else environ
        if not environ.get(PIN_ENV["dialect"]) or not environ.get(PIN_ENV["db_name"]):
            raise SourceDatabaseError(
                f"{PIN_ENV['dialect']}/{PIN_ENV['db_name']} are not set: the ingestion pipeline "
                "only connects where its spec's environment points, which cpsign_setup takes "
                "from the source database connection; run cpsign_setup again to update the spec"
            )
        port = environ.get(PIN_ENV["port"]) or ""
        if port and not port.isdigit():
            raise SourceDatabaseError(f"{PIN_ENV['port']}={port!r}: not a port number")
        return cls(
            dialect=environ[PIN_ENV["dialect"]],
            db_name=environ[PIN_ENV["db_name"]],
            host=environ.get(PIN_ENV["host"]) or None,
            port=int(port) if port else None,
            user=environ.get(PIN_ENV["user"]) or None,
        )

    def url(self, password: str | None = None) -> Any:
        """The SQLAlchemy URL (the password only ever in memory). Not for SQLite."""
        from sqlalchemy.engine import URL

        driver = {"mysql": "mysql+mysqldb", "postgresql": "postgresql+psycopg2"}[self.dialect]
        return URL.create(
            driver,
            username=self.user,
            password=password or None,
            host=self.host,
            port=self.port,
            database=self.db_name,
        )


def _same_path(a: str, b: str) -> bool:
    return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def coordinate_problems(
    database: Any, source: SourceDatabase, where: str = "the source database connection"
) -> list[str]:
    """Every field of a configuration's ``preprocessing.database`` that ``source`` does not hold.

    A configuration keeps its database block (the lab's configuration.json files have
    one), but only as a statement of where the data is: it must match the
    administrator's connection field by field, so the form cannot send the password
    anywhere else.
    """
    if not isinstance(database, Mapping):
        return []  # the schema reports it
    problems: list[str] = []
    dialect = database.get("dialect", "mysql")

    def differs(field: str, given: Any, expected: Any) -> None:
        problems.append(
            f"{DATABASE_FIELD}.{field}: {given!r} is not what {where} holds ({expected!r}); "
            "only an administrator chooses where ingestion connects"
        )

    if dialect != source.dialect:
        differs("dialect", dialect, source.dialect)
        return problems
    if source.dialect == "sqlite":
        name = database.get("db_name")
        if not isinstance(name, str) or not _same_path(name, source.db_name):
            differs("db_name", name, source.db_name)
        return problems
    if database.get("host") != (source.host or "localhost"):
        differs("host", database.get("host"), source.host or "localhost")
    port = database.get("port") or DEFAULT_PORTS[dialect]
    if port != source.effective_port:
        differs("port", database.get("port"), source.effective_port)
    if database.get("user") != (source.user or ""):
        differs("user", database.get("user"), source.user or "")
    if database.get("db_name") != source.db_name:
        differs("db_name", database.get("db_name"), source.db_name)
    return problems


def confine_sqlite(source: SourceDatabase, directory: str | None) -> None:
    """Refuse a SQLite source outside ``directory`` (when one is configured)."""
    if source.dialect != "sqlite" or not directory:
        return
    root = os.path.realpath(directory)
    path = os.path.realpath(source.db_name)
    if os.path.commonpath([root, path]) != root:
        raise SourceDatabaseError(
            f"sqlite file {source.db_name}: outside the directory SQLite sources are confined to "
            f"({directory}, [cpsign] source_sqlite_dir)"
        )


# ---------------------------------------------------------------------------- the session


def _sqlite_creator(path: str) -> Any:
    import sqlite3
    from urllib.parse import quote

    if not Path(path).is_file():
        raise SourceDatabaseError(f"sqlite file {path}: does not exist (it is opened read-only)")
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    return connect


@contextmanager
def read_only_connection(
    source: SourceDatabase, password: str | None = None, connect_timeout: int | None = None
) -> Iterator[Connection]:
    """A SQLAlchemy connection to ``source`` in a read-only transaction, rolled back at the end."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from cpsign_airflow.extras import require

    if source.dialect == "sqlite":
        engine = create_engine(
            "sqlite://", creator=_sqlite_creator(source.db_name), poolclass=NullPool
        )
        begin = "PRAGMA query_only = ON"
    elif source.dialect == "mysql":
        require("MySQLdb", "mysql", "a MySQL source database")
        args: dict[str, Any] = {"multi_statements": False}
        if connect_timeout:
            args["connect_timeout"] = connect_timeout
        engine = create_engine(source.url(password), connect_args=args, poolclass=NullPool)
        begin = "START TRANSACTION READ ONLY"
    else:
        require("psycopg2", "postgres", "a PostgreSQL source database")
        args = {"connect_timeout": connect_timeout} if connect_timeout else {}
        engine = create_engine(source.url(password), connect_args=args, poolclass=NullPool)
        begin = "SET TRANSACTION READ ONLY"
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(begin)
            try:
                yield conn
            finally:
                conn.rollback()
    finally:
        engine.dispose()
