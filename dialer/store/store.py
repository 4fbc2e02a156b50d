"""The store: opening it, migrating it, and handing out units of work."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import TracebackType

from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text
from sqlalchemy import exc as sa_exc

from dialer.errors import StoreError
from dialer.store import rotation
from dialer.store.crypto import DataKeys
from dialer.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    WRITE_OPTION,
    create_store_engine,
    default_url,
    foreign_keys_off,
    mask_url,
    normalize_url,
    translate_error,
)
from dialer.store.queries import ReadUnitOfWork
from dialer.store.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: pg_advisory_xact_lock key held while migrating, so that workers starting together
#: upgrade one after the other.
_MIGRATION_LOCK_KEY = 0x6469616C6572  # "dialer"


def alembic_config() -> Config:
    """An alembic configuration pointing at the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


class Store:
    """The dialer's database, SQLite (embedded default) or PostgreSQL (several workers).

    - `write()` and `read()` are context managers yielding a unit of work bound to one
      transaction: a write unit commits when its block ends normally and rolls back
      when it raises; a read unit never changes anything;
    - on SQLite, writes begin with BEGIN IMMEDIATE (one writer at a time, others wait up
      to the busy timeout), reads with a deferred BEGIN (they never block a writer in
      WAL mode);
    - every database failure surfaces as StoreError (`retryable` when the database was
      unreachable or busy); a naive datetime surfaces as ValueError; other exceptions
      raised inside a block pass through unchanged after the rollback;
    - error messages carry the URL with its password masked and never a phone number;
    - units of work encrypt and decrypt with `keys` (see `dialer.store.crypto`).
    """

    def __init__(self, engine: Engine, keys: DataKeys) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{WRITE_OPTION: True})
        self._keys = keys

    @property
    def keys(self) -> DataKeys:
        """The keys this store encrypts, decrypts and hashes numbers with."""
        return self._keys

    @property
    def url(self) -> str:
        """The database URL, password masked."""
        return mask_url(self._engine.url)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for a library that keeps its own table in the dialer's
        database (the scheduler's job store)."""
        return self._engine

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[UnitOfWork]:
        """A unit of work in a write transaction, committed if the block succeeds."""
        with self._transaction(write=True, action="writing to") as connection:
            yield UnitOfWork(connection, self._keys)

    @contextmanager
    def read(self) -> Iterator[ReadUnitOfWork]:
        """A unit of work in a read transaction (one snapshot of the database)."""
        with self._transaction(write=False, action="reading from") as connection:
            yield ReadUnitOfWork(connection, self._keys)

    def migrate(self) -> None:
        """Bring the schema to the newest revision (alembic `upgrade head`)."""
        config = alembic_config()
        with self._transaction(write=True, action="migrating", migration=True) as connection:
            if self.dialect == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            config.attributes["connection"] = connection
            config.attributes["data_keys"] = self._keys  # 0008 encrypts what it finds
            try:
                command.upgrade(config, "head")
            except CommandError as exc:
                raise StoreError(
                    f"cannot migrate {self.url}: {exc} (was it created by a newer dialer?)"
                ) from exc

    def check_keys(self) -> None:
        """ConfigError if the keys are not the ones the stored data was written with (a
        hash key, or a data key id, known by another key); remembers new data keys."""
        with self._transaction(write=False, action="reading from") as connection:
            missing = rotation.unknown_fingerprints(connection, self._keys, self.url)
        if missing:
            with self._transaction(write=True, action="writing to") as connection:
                rotation.remember_fingerprints(connection, self._keys, self.url)

    def ping(self) -> None:
        """Open and close a transaction; StoreError if the database cannot be reached."""
        with self._transaction(write=False, action="connecting to"):
            pass

    def close(self) -> None:
        """Close every pooled connection. The store can still be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self, *, write: bool, action: str,
                     migration: bool = False) -> Iterator[Connection]:
        engine = self._write_engine if write else self._engine
        try:
            connection = engine.connect()
        except sa_exc.SQLAlchemyError as exc:
            raise translate_error(exc, action="connecting to", url=engine.url) from exc
        try:
            with connection:
                if not write and self.dialect == "postgresql":
                    connection.execution_options(isolation_level="REPEATABLE READ")
                with foreign_keys_off(connection) if migration else nullcontext(), \
                        connection.begin():
                    yield connection
        except sa_exc.StatementError as exc:
            if not isinstance(exc, sa_exc.DBAPIError) and isinstance(exc.orig, ValueError):
                # A bind processor refused a value, e.g. a naive datetime.
                raise ValueError(str(exc.orig)) from exc
            raise translate_error(exc, action=action, url=engine.url) from exc
        except sa_exc.SQLAlchemyError as exc:
            raise translate_error(exc, action=action, url=engine.url) from exc


def open_store(
    url: str | None = None,
    *,
    migrate: bool = True,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    keys: DataKeys | None = None,
) -> Store:
    """Open the store at `url` (default: `default_url()`), migrating it unless told not to.

    `postgres://` and `postgresql://` URLs use the psycopg 3 driver. `busy_timeout_ms`
    is how long a SQLite writer waits for another writer before giving up. `keys`
    default to `DataKeys.from_environment()` (the variables, else the key file).
    Raises StoreError: retryable if the database could not be reached, not retryable
    for a malformed URL, an unknown driver or a schema newer than this code; ConfigError
    for missing or malformed keys, or keys the stored data was not written with.
    """
    parsed = normalize_url(default_url() if url is None else url)
    keys = DataKeys.from_environment() if keys is None else keys
    store = Store(create_store_engine(parsed, busy_timeout_ms=busy_timeout_ms), keys)
    try:
        if migrate:
            store.migrate()
        else:
            store.ping()
        store.check_keys()
    except BaseException:
        store.close()
        raise
    logger.debug("store opened at %s", store.url)
    return store
