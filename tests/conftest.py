"""Shared fixtures: a fresh, empty store on each supported database.

`store_url` is parametrised over SQLite (a file under tmp_path) and PostgreSQL (a new
database `dialer_test_<hex>` on the server named by `$DIALER_TEST_PG_URL`, dropped
afterwards). Set `DIALER_TEST_PG_URL=` (empty) to skip the PostgreSQL runs; an
unreachable server is an error, not a skip.

The session has its own data keys: `DIALER_KEY_FILE` names a fresh key file (made up
front, so no command a test runs warns about making one; subprocesses inherit the
variable), and the key variables of the developer's environment are unset.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from dialer.store import Store, open_store
from dialer.store.crypto import DATA_KEYS_ENV, HASH_KEY_ENV, KEY_FILE_ENV, load_key_file
from dialer.store.engine import mask_url, normalize_url

PG_URL_ENV = "DIALER_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session", autouse=True)
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The test session's key file, with fresh keys, named by `DIALER_KEY_FILE` before
    any other fixture opens a store (module-scoped stores too)."""
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_FILE_ENV, str(path))
        patch.delenv(DATA_KEYS_ENV, raising=False)
        patch.delenv(HASH_KEY_ENV, raising=False)
        load_key_file(path)
        yield path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database (not yet migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dialer.db'}"
    else:
        yield from _fresh_postgres_database()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store on a fresh database, closed afterwards."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


def _fresh_postgres_database() -> Iterator[str]:
    admin_url = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
    if not admin_url:
        pytest.skip(f"{PG_URL_ENV} is empty: PostgreSQL tests disabled")
    url = normalize_url(admin_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"dialer_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa_exc.OperationalError as exc:
        admin.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        pytest.fail(
            f"PostgreSQL test server {mask_url(url)} is unreachable ({reason}); start it, "
            f"point {PG_URL_ENV} at one, or set {PG_URL_ENV}='' to skip PostgreSQL tests",
            pytrace=False,
        )
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
