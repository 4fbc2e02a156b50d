"""Alembic environment for the dialer's store.

`open_store()` runs migrations on its own connection, passed in
`config.attributes["connection"]` inside an open transaction. Run by hand (the
`alembic` command with `alembic.ini` beside this file), it connects to
`sqlalchemy.url`, or to `$DIALER_DB` when that option is empty.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from dialer.errors import StoreError
from dialer.store.engine import (
    WRITE_OPTION,
    create_store_engine,
    default_url,
    foreign_keys_off,
    normalize_url,
)
from dialer.store.schema import metadata


def run_on(connection: Connection) -> None:
    """Run the pending migrations on `connection` (inside its transaction, if it has one).

    On SQLite the caller has turned foreign keys off (`foreign_keys_off`) so tables can
    be rebuilt; they are checked here, before the transaction commits."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        # Our SQLite engines emit BEGIN themselves, so DDL there is transactional too.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                tables = sorted({str(row[0]) for row in broken})
                raise StoreError(f"the migration broke foreign keys in {', '.join(tables)}")


def run_offline(url: str) -> None:
    """Print the migrations' SQL instead of running it (`alembic upgrade --sql`)."""
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = normalize_url(config.get_main_option("sqlalchemy.url") or default_url())
    if context.is_offline_mode():
        run_offline(url.render_as_string(hide_password=False))
        return
    engine = create_store_engine(url)
    try:
        with engine.connect() as own_connection, foreign_keys_off(own_connection):
            own_connection.execution_options(**{WRITE_OPTION: True})
            run_on(own_connection)
    finally:
        engine.dispose()


main()
