"""Connecting to the database: URLs, engines with SQLite's pragmas, and error translation.

SQLAlchemy and DBAPI errors are turned into `StoreError` here and only here. Messages
name the operation, the masked URL and the database's own short reason; they never carry
bound parameters (engines are created with `hide_parameters=True`) or key values, so no
phone number reaches an exception text or a log line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from dialer.errors import StoreError

DEFAULT_URL = "sqlite:///dialer.db"
#: Execution option that makes SQLite open the transaction with BEGIN IMMEDIATE.
WRITE_OPTION = "dialer_write"
DEFAULT_BUSY_TIMEOUT_MS = 10_000
PG_CONNECT_TIMEOUT_S = 10

# PostgreSQL SQLSTATE classes worth a retry: connection exception, transaction rollback
# (serialization failure, deadlock), insufficient resources, operator intervention,
# object not in prerequisite state (lock not available).
_RETRYABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "55"})
# SQLite primary result codes worth a retry: BUSY, LOCKED, IOERR, CANTOPEN.
_RETRYABLE_SQLITE_CODES = frozenset({5, 6, 10, 14})
_CREDENTIALS = re.compile(r"(://[^:/@]*):[^@/]*@")


def default_url() -> str:
    """The database URL to use: `$DIALER_DB` if set, else `sqlite:///dialer.db` in the cwd."""
    return os.environ.get("DIALER_DB") or DEFAULT_URL


def mask_url(url: str | URL) -> str:
    """`url` with its password replaced by `***`, safe for messages and logs."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return _CREDENTIALS.sub(r"\1:***@", url)


def normalize_url(url: str) -> URL:
    """Parse `url`; `postgres://` and `postgresql://` select the psycopg 3 driver.

    Raises StoreError (not retryable) if `url` is not a database URL.
    """
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as exc:
        raise StoreError(f"not a database URL: {mask_url(url)}") from exc
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_store_engine(url: URL, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Engine:
    """An engine for `url`, with SQLite's pragmas and BEGIN handling installed.

    Connects lazily; raises StoreError (not retryable) for an unknown dialect or driver.
    """
    kwargs: dict[str, Any] = {"hide_parameters": True}
    backend = url.get_backend_name()
    if backend == "postgresql":
        kwargs["pool_pre_ping"] = True
        if "connect_timeout" not in url.query:
            kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    try:
        engine = sa.create_engine(url, **kwargs)
    except (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"unsupported database URL {mask_url(url)}: {type(exc).__name__}") from exc
    if backend == "sqlite":
        _install_sqlite_hooks(engine, busy_timeout_ms)
    return engine


def _install_sqlite_hooks(engine: Engine, busy_timeout_ms: int) -> None:
    """Pragmas on every new connection; our own BEGIN (the pysqlite recipe).

    sqlite3's implicit transaction handling is switched off (`isolation_level=None`) so
    that SELECTs run inside the transaction and writers take the write lock up front with
    BEGIN IMMEDIATE instead of failing to upgrade a read lock half-way through.
    """
    pragmas = (
        f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
    )

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    def on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


@contextmanager
def foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite: foreign keys off for a migration, on again after it, as SQLite's recipe for
    rebuilding a table that others refer to says (dropping the old `leads` would
    otherwise fail for `attempts`). Enter it BEFORE the transaction begins: inside one
    the PRAGMA is ignored. The migration checks `PRAGMA foreign_key_check` before it
    commits. Other databases: nothing to do."""
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.driver_connection
    if driver is None:  # pragma: no cover - a checked-out connection always has one
        raise StoreError("no database connection to migrate on")
    driver.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys = ON")


def translate_error(exc: sa_exc.SQLAlchemyError, *, action: str, url: URL) -> StoreError:
    """A StoreError describing `exc` without parameters, key values or passwords.

    `action` reads before the URL: "connecting to", "writing to", "migrating".
    """
    reason = _describe(exc)
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return StoreError(f"{action} {mask_url(url)} failed: {reason}", retryable=is_retryable(exc))


def is_retryable(exc: sa_exc.SQLAlchemyError) -> bool:
    """True when `exc` says the database was unreachable, busy, or rolled us back."""
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, sa_exc.OperationalError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return str(sqlstate)[:2] in _RETRYABLE_SQLSTATE_CLASSES
    sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in _RETRYABLE_SQLITE_CODES
    return True  # no code at all: the connection attempt itself failed


def _describe(exc: sa_exc.SQLAlchemyError) -> str:
    """The database's short reason for `exc`, leaving out anything that echoes values."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return type(exc).__name__
    diag = getattr(orig, "diag", None)
    if diag is not None and getattr(orig, "sqlstate", None):
        # psycopg: the primary message and constraint name; DETAIL holds key values.
        parts = [f"{diag.message_primary} (SQLSTATE {orig.sqlstate}"]
        if diag.constraint_name:
            parts.append(f", constraint {diag.constraint_name}")
        return "".join(parts) + ")"
    first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {first_line}" if first_line else type(orig).__name__
