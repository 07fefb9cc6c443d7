"""Pre-flight and ingestion: one read-only SELECT, sent only where the administrator pointed.

Every test runs on a real MariaDB and on SQLite (``source`` fixture). What an attacker
with trigger rights tried (issue #22) is refused by the configuration check, by the
pre-flight check and by the ingestion stage, each before any side effect; the table is
intact afterwards, and a listener on loopback named by a configuration sees no connection.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

from cpsign_airflow.cpsign.configuration import ConfigurationError, validate_configuration
from cpsign_airflow.cpsign.source_db import (
    SourceDatabase,
    SourceDatabaseError,
    check_statement,
    read_only_connection,
)
from cpsign_airflow.stages import ingest
from cpsign_airflow.testing.mariadb import _connect, scratch_database
from cpsign_airflow.workflow.preflight import (
    PreflightError,
    check_source_query,
    resolve_source,
    resolve_source_connection,
)
from cpsign_airflow.workflow.training import validate

PASSWORD = "src-Pa55word-never-shown"
CONN_ID = "cpsign_source_db"
QUERY = "SELECT smiles, y FROM t WHERE 1 = 1 {}"

#: What the probe of issue #22 ran (MariaDB and SQLite), and variants of it.
ATTACKS = {
    "preflight-wrapper-escape": (
        "SELECT smiles, y FROM t) AS a; DELETE FROM t; SELECT * FROM (SELECT 1 AS smiles, 2 AS y {}"
    ),
    "select-then-drop": "SELECT smiles, y FROM t; DROP TABLE t {}",
    "drop": "DROP TABLE t {}",
    "create-user-grant": (
        "SELECT smiles, y FROM t {}; CREATE USER evil IDENTIFIED BY 'x'; GRANT ALL ON *.* TO evil"
    ),
    "delete-in-cte": "WITH d AS (DELETE FROM t RETURNING *) SELECT smiles, y FROM d {}",
    "select-into": "SELECT smiles, y INTO @a, @b FROM t {}",
    "into-outfile": "SELECT smiles, y FROM t INTO OUTFILE '/tmp/cpsign-leak' {}",
    "for-update": "SELECT smiles, y FROM t FOR UPDATE {}",
    "executable-comment": "SELECT smiles, y FROM t /*!50000 ; DELETE FROM t */ {}",
    "update": "UPDATE t SET y = 0 {}",
}


@dataclass
class Source:
    """A source database with table ``t`` (3 rows) and the Airflow connection to it."""

    kind: str
    source: SourceDatabase
    password: str | None
    tmp: Path

    def database_block(self) -> dict:
        return self.source.as_configuration()

    def rows(self) -> int:
        """Rows of ``t`` now (fails if the table is gone)."""
        with read_only_connection(self.source, self.password) as conn:
            return conn.exec_driver_sql("SELECT COUNT(*) FROM t").scalar_one()

    def users(self) -> set[str]:
        if self.kind != "mysql":
            return set()
        with read_only_connection(self.source, self.password) as conn:
            return {r[0] for r in conn.exec_driver_sql("SELECT User FROM mysql.user")}

    def config(self, query: str = QUERY, **database) -> dict:
        return {
            "workflow_name": "Sec",
            "preprocessing": {
                "database": {**self.database_block(), **database},
                "query": {
                    "database_query": query,
                    "smi_columns": ["smiles", "y"],
                    "smi_filename": "train.tsv",
                },
            },
            "train": {"ptype": 2, "nr-models": 2, "model-name": "Sec_acp"},
        }

    def pin_env(self) -> dict[str, str]:
        env = self.source.pin_env()
        if self.password:
            env[ingest.PASSWORD_ENV] = self.password
        return env


@pytest.fixture(params=["mysql", "sqlite"])
def source(request, tmp_path, monkeypatch) -> Iterator[Source]:
    if request.param == "sqlite":
        path = tmp_path / "source dir" / "chembl.db"
        path.parent.mkdir()
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE t (smiles TEXT, y REAL)")
            db.executemany("INSERT INTO t VALUES (?, ?)", [("CCO", 1), ("CCN", 2), ("CCC", 3)])
        db.close()
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"sqlite:///{path}")
        yield Source("sqlite", SourceDatabase("sqlite", db_name=str(path)), None, tmp_path)
        return
    from sqlalchemy.engine import make_url

    server_url = request.getfixturevalue("mysql_server_url")
    with scratch_database(server_url, prefix="cpsign_src_") as url:
        u = make_url(url)
        admin = _connect(url)
        try:
            cur = admin.cursor()
            cur.execute(f"USE `{u.database}`")
            cur.execute("CREATE TABLE t (smiles VARCHAR(200), y DOUBLE)")
            cur.execute("INSERT INTO t VALUES ('CCO', 1), ('CCN', 2), ('CCC', 3)")
            admin.commit()
        finally:
            admin.close()
        host, port = u.host or "127.0.0.1", u.port or 3306
        user, password = u.username or "root", u.password or None
        conn = {"conn_type": "mysql", "host": host, "port": port, "login": user}
        conn["schema"] = u.database
        if password:
            conn["password"] = password
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
        src = SourceDatabase("mysql", db_name=u.database, host=host, port=port, user=user)
        yield Source("mysql", src, password, tmp_path)


def run_ingestion(src: Source, config: dict, out: Path) -> tuple[int, str]:
    """The stage as its pipeline runs it: ``cpsign-ingest`` with the pinned environment."""
    path = out.parent / "configuration.json"
    path.write_text(json.dumps(config))
    import contextlib
    import io
    import os

    err = io.StringIO()
    saved = dict(os.environ)
    os.environ.update(src.pin_env())
    try:
        with contextlib.redirect_stderr(err):
            code = ingest.main(["--config", str(path), "--out", str(out)])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, err.getvalue()


# -------------------------------------------------------------- one read-only SELECT


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_query_that_writes_is_refused_everywhere_before_any_side_effect(source, attack, tmp_path):
    query = ATTACKS[attack]
    users = source.users()
    config = source.config(query)
    # 1. the configuration check (form, validate task, ingestion all run it)
    with pytest.raises(ConfigurationError) as info:
        validate_configuration(config)
    assert any(p.startswith("preprocessing.query.database_query: ") for p in info.value.problems)
    # 2. the pre-flight check, which no longer wraps the text it is given
    with pytest.raises(PreflightError, match=r"preprocessing\.query\.database_query: "):
        check_source_query(config, CONN_ID)
    # 3. the validate task with preflight=false: the statement is still checked
    with pytest.raises(AirflowFailException, match=r"database_query"):
        validate.function(
            {"configuration": config, "config_repo": "Sec-config", "preflight": False},
            "unused",
            "2.0.0",
            [CONN_ID],
        )
    # 4. the ingestion stage, with its password
    out = tmp_path / "out"
    code, err = run_ingestion(source, config, out)
    assert code == 1 and "database_query" in err
    assert not (out / "train.tsv").exists()
    assert source.rows() == 3
    assert source.users() == users
    assert not Path("/tmp/cpsign-leak").exists()


def test_sqlite_attach_creates_no_file(tmp_path, monkeypatch):
    path = tmp_path / "src.db"
    sqlite3.connect(path).execute("CREATE TABLE t (smiles TEXT, y REAL)").connection.close()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"sqlite:///{path}")
    src = Source("sqlite", SourceDatabase("sqlite", db_name=str(path)), None, tmp_path)
    target = tmp_path / "attached.db"
    for query in (
        f"ATTACH DATABASE '{target}' AS x {{}}",
        f"ATTACH '{target}' AS x; SELECT 1 {{}}",
    ):
        config = src.config(query)
        with pytest.raises(ConfigurationError, match="database_query"):
            validate_configuration(config)
        with pytest.raises(PreflightError, match="database_query"):
            check_source_query(config, CONN_ID)
        assert run_ingestion(src, config, tmp_path / "out")[0] == 1
        assert not target.exists()


def test_the_session_itself_cannot_write_or_run_two_statements(source):
    """Defence in depth: were the statement check bypassed, the session still only reads.

    Not DDL on MySQL/MariaDB: DROP commits the read-only transaction implicitly and runs
    (measured), so there the statement check and a read-only database user are the guard
    (docs/deployment.md, "Security").
    """
    statements = ["DELETE FROM t", "UPDATE t SET y = 0", "SELECT 1; DELETE FROM t"]
    if source.kind == "sqlite":
        statements.append("DROP TABLE t")
    for sql in statements:
        with pytest.raises(Exception) as info:
            with read_only_connection(source.source, source.password) as conn:
                conn.exec_driver_sql(sql).fetchall()
        text = str(info.value).lower()
        assert any(
            word in text
            for word in ("read-only", "read only", "readonly", "syntax", "one statement")
        ), text
    assert source.rows() == 3


def test_good_queries_pass_and_the_placeholder_and_semicolon_are_allowed(source):
    for query in (
        QUERY,
        QUERY + ";",
        "SELECT smiles, y FROM t{};",
        "WITH q AS (SELECT smiles, y FROM t) SELECT smiles, y FROM q {}",
        "SELECT smiles, y FROM t WHERE y > 1 UNION SELECT smiles, y FROM t WHERE y <= 1 {}",
        "SELECT smiles, y FROM t WHERE smiles <> 'a;b' {}",
    ):
        config = source.config(query)
        validate_configuration(config)
        assert check_source_query(config, CONN_ID) == ["smiles", "y"]
    assert source.rows() == 3


def test_check_statement_names_what_is_wrong():
    with pytest.raises(SourceDatabaseError, match="found 2 statements"):
        check_statement("SELECT 1; SELECT 2")
    with pytest.raises(SourceDatabaseError, match="not DELETE"):
        check_statement("DELETE FROM t")
    with pytest.raises(SourceDatabaseError, match="parses as sqlite"):
        check_statement("SELEC 1 FROM", "sqlite")
    check_statement("SELECT a FROM t LIMIT 5;", "postgresql")


def test_ingestion_reads_the_rows_through_the_read_only_session(source, tmp_path):
    out = tmp_path / "out"
    code, err = run_ingestion(source, source.config(), out)
    assert code == 0, err
    lines = (out / "train.tsv").read_text().splitlines()
    held_out = (out / ingest.TEST_FILE).read_text().splitlines()
    assert lines[0] == "smiles\ty" and len(lines) - 1 + len(held_out) - 1 == 3


# --------------------------------------------------- credentials only where pointed


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP listener on loopback that a configuration names; it must see no connection."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def accepted(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            peer, _ = sock.accept()
        except BlockingIOError:
            return count
        peer.close()
        count += 1


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("host", {"host": "127.0.0.2"}),
        ("port", {"port": "LISTENER"}),
        ("dialect", {"dialect": "postgresql", "host": "127.0.0.1", "port": "LISTENER"}),
        ("user", {"user": "someone_else"}),
        ("db_name", {"db_name": "other_db"}),
    ],
)
def test_a_configuration_pointing_elsewhere_is_refused_and_nothing_connects(
    source, listener, field, change, tmp_path
):
    port = listener.getsockname()[1]
    change = {k: port if v == "LISTENER" else v for k, v in change.items()}
    if source.kind == "sqlite" and field in ("host", "user", "port"):
        # host, user and port mean nothing for SQLite: a dialect change is what sends a password
        change = {"dialect": "mysql", "host": "127.0.0.1", "port": port, "user": "x"}
        field = "dialect"
    if source.kind == "sqlite" and field == "db_name":
        change = {"db_name": str(tmp_path / "elsewhere.db")}
    config = source.config(**change)
    validate_configuration(config)  # a well-formed configuration...
    with pytest.raises(PreflightError) as info:  # ...that names another place
        check_source_query(config, CONN_ID)
    assert f"preprocessing.database.{field}: " in str(info.value)
    with pytest.raises(AirflowFailException, match=rf"preprocessing\.database\.{field}: "):
        validate.function(
            {"configuration": config, "config_repo": "Sec-config", "preflight": False},
            "unused",
            "2.0.0",
            [CONN_ID],
        )
    code, err = run_ingestion(source, config, tmp_path / "out")
    assert code == 1 and f"preprocessing.database.{field}: " in err
    assert accepted(listener) == 0
    assert not (tmp_path / "elsewhere.db").exists()


def test_ingestion_without_a_pinned_source_connects_nowhere(source, tmp_path, listener):
    port = listener.getsockname()[1]
    config = source.config()
    config["preprocessing"]["database"] = {
        "dialect": "mysql",
        "host": "127.0.0.1",
        "port": port,
        "user": "u",
        "db_name": "d",
    }
    path = tmp_path / "configuration.json"
    path.write_text(json.dumps(config))
    with pytest.raises(SourceDatabaseError, match="SOURCE_DB_DIALECT"):
        ingest.fetch_rows(validate_configuration(config), PASSWORD, environ={})
    assert accepted(listener) == 0


def test_the_form_configuration_gets_the_connections_coordinates(source):
    config = source.config()
    del config["preprocessing"]["database"]
    out = validate.function(
        {"configuration": config, "config_repo": "Sec-config"}, "unused", "2.0.0", [CONN_ID]
    )
    assert out["configuration"]["preprocessing"]["database"] == source.database_block()


def test_the_allow_list_decides_which_connections_a_configuration_may_name(
    source, monkeypatch, tmp_path
):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (smiles TEXT, y REAL)").connection.close()
    monkeypatch.setenv("AIRFLOW_CONN_OTHER_SOURCE", f"sqlite:///{other}")
    config = source.config(dialect="sqlite", db_name=str(other))
    if source.kind == "mysql":
        config["preprocessing"]["database"] = {
            "dialect": "sqlite",
            "host": "-",
            "user": "-",
            "db_name": str(other),
        }
    with pytest.raises(PreflightError, match=r"preprocessing\.database\."):
        resolve_source(config, [CONN_ID])
    conn_id, resolved, _ = resolve_source(config, [CONN_ID, "other_source"])
    assert conn_id == "other_source" and resolved.db_name == str(other)
    assert resolve_source_connection(None, [CONN_ID, "other_source"]) == source.source
    with pytest.raises(PreflightError, match="'not_allowed' is not an allowed source"):
        resolve_source_connection("not_allowed", [CONN_ID, "other_source"])


def test_sqlite_sources_are_confined_to_the_configured_directory(tmp_path, monkeypatch):
    inside = tmp_path / "sources" / "a.db"
    inside.parent.mkdir()
    sqlite3.connect(inside).execute("CREATE TABLE t (smiles TEXT, y REAL)").connection.close()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"sqlite:///{inside}")
    src = Source("sqlite", SourceDatabase("sqlite", db_name=str(inside)), None, tmp_path)
    assert check_source_query(src.config(), CONN_ID, str(inside.parent)) == ["smiles", "y"]
    with pytest.raises(PreflightError, match=r"outside the directory .*source_sqlite_dir"):
        check_source_query(src.config(), CONN_ID, str(tmp_path / "elsewhere"))
    with pytest.raises(PreflightError, match="outside the directory"):
        resolve_source_connection(None, [CONN_ID], str(tmp_path / "elsewhere"))


def test_a_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path, monkeypatch):
    path = tmp_path / "missing.db"
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"sqlite:///{path}")
    src = Source("sqlite", SourceDatabase("sqlite", db_name=str(path)), None, tmp_path)
    with pytest.raises(PreflightError, match=rf"sqlite file {path}: does not exist"):
        check_source_query(src.config(), CONN_ID)
    assert not path.exists()


# ------------------------------------------------------------- errors that explain


def test_a_broken_query_names_the_source_connection(source):
    with pytest.raises(PreflightError) as info:
        check_source_query(source.config("SELECT smiles, y FROM no_such_table{}"), CONN_ID)
    message = str(info.value)
    assert message.startswith(
        f"preprocessing.query.database_query does not run on the source database connection "
        f"'{CONN_ID}' ("
    )
    assert "no_such_table" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_smi_columns_must_be_among_the_querys_columns(source):
    config = source.config()
    config["preprocessing"]["query"]["smi_columns"] = ["canonical_smiles", "y"]
    with pytest.raises(PreflightError, match=r"smi_columns: \['canonical_smiles'\] not among"):
        check_source_query(config, CONN_ID)


def test_a_connection_that_is_not_a_source_database_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_SOURCE_PACHD", f"pachyderm://:{PASSWORD}@pachd:30650")
    config = {"preprocessing": {"database": {}, "query": {"database_query": QUERY}}}
    with pytest.raises(PreflightError) as info:
        check_source_query(config, "cpsign_source_pachd")
    message = str(info.value)
    assert "connection 'cpsign_source_pachd'" in message and "type 'pachyderm'" in message
    assert PASSWORD not in message


def test_a_missing_connection_is_named():
    config = {"preprocessing": {"database": {}, "query": {"database_query": QUERY}}}
    with pytest.raises(PreflightError, match="AIRFLOW_CONN_CPSIGN_NO_SOURCE"):
        check_source_query(config, "cpsign_no_source")


def test_an_unreachable_mysql_source_keeps_the_password_out(monkeypatch, caplog):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CPSIGN_SOURCE_DOWN", f"mysql://chembl:{PASSWORD}@127.0.0.1:1/chembl_24"
    )
    config = {
        "preprocessing": {
            "database": {"host": "127.0.0.1", "port": 1, "user": "chembl", "db_name": "chembl_24"},
            "query": {"database_query": QUERY},
        }
    }
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PreflightError) as info:
        check_source_query(config, "cpsign_source_down")
    message = str(info.value)
    assert "source database connection 'cpsign_source_down' (mysql 127.0.0.1:1/chembl_24)" in (
        message
    )
    assert PASSWORD not in "".join(traceback.format_exception(info.value))
    assert PASSWORD not in caplog.text


def test_a_driver_message_quoting_the_password_is_scrubbed(monkeypatch):
    import cpsign_airflow.cpsign.source_db as source_db

    def leaky(*args, **kwargs):
        raise RuntimeError(f"cannot parse DSN mysql://chembl:{PASSWORD}@db/chembl_24\nmore")

    monkeypatch.setattr(source_db, "read_only_connection", leaky)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CPSIGN_SOURCE_LEAKY", f"mysql://chembl:{PASSWORD}@db/chembl_24"
    )
    config = {
        "preprocessing": {
            "database": {"host": "db", "user": "chembl", "db_name": "chembl_24"},
            "query": {"database_query": QUERY},
        }
    }
    with pytest.raises(PreflightError) as info:
        check_source_query(config, "cpsign_source_leaky")
    assert str(info.value).endswith("cannot parse DSN mysql://chembl:***@db/chembl_24")
    assert PASSWORD not in "".join(traceback.format_exception(info.value))
