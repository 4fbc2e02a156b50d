"""Opening the store: URLs, migrations, SQLite pragmas and locking, error translation."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from dialer.errors import StoreError
from dialer.store import Store, default_url, mask_url, open_store
from dialer.store.engine import normalize_url
from dialer.store.schema import metadata
from dialer.store.store import alembic_config

NOW = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


def test_default_url_reads_dialer_db(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIALER_DB", raising=False)
    assert default_url() == "sqlite:///dialer.db"
    monkeypatch.setenv("DIALER_DB", "postgresql://db.example/dialer")
    assert default_url() == "postgresql://db.example/dialer"


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg"),
        ("postgresql://u:p@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_postgres_urls_use_psycopg3(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_mask_url_hides_the_password() -> None:
    assert mask_url("postgresql://alice:s3cret@h:5432/db") == "postgresql://alice:***@h:5432/db"
    assert "s3cret" not in mask_url("::not a url://alice:s3cret@h")


@pytest.mark.parametrize("url", ["not a url", "nosuchdatabase://h/db"])
def test_a_bad_url_is_a_permanent_store_error(url: str) -> None:
    with pytest.raises(StoreError) as raised:
        open_store(url)
    assert not raised.value.retryable


def test_an_unreachable_server_is_retryable_and_keeps_the_password_out() -> None:
    with pytest.raises(StoreError) as raised:
        open_store("postgresql://alice:s3cret@127.0.0.1:1/dialer")
    assert raised.value.retryable
    message = str(raised.value)
    assert "s3cret" not in message
    assert "alice:***@127.0.0.1:1" in message


def test_migrations_build_exactly_the_model(store: Store) -> None:
    with store.read() as uow:
        context = MigrationContext.configure(uow._conn)
        assert compare_metadata(context, metadata) == []
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert context.get_current_revision() == head


def test_reopening_a_migrated_store_is_harmless(store_url: str) -> None:
    for _ in range(2):
        with open_store(store_url) as store, store.write() as uow:
            uow.ensure_campaign("spring", default_region="CN", now=NOW)
    with open_store(store_url, migrate=False) as store, store.read() as uow:
        assert uow.campaign_names() == ["spring"]


def test_an_unmigrated_store_fails_permanently(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with (
        open_store(url, migrate=False) as store,
        pytest.raises(StoreError) as raised,
        store.read() as uow,
    ):
        uow.campaign_names()
    assert not raised.value.retryable


def test_sqlite_pragmas_are_in_effect(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'd.db'}") as store, store.read() as uow:
        pragma = {
            name: uow._conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 10_000,
    }


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(StoreError) as raised, store.write() as uow:
        uow.create_list(999, source="x", file_name="f.csv", sha256="0" * 64, now=NOW)
    assert not raised.value.retryable


def test_a_write_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with open_store(f"sqlite:///{path}") as store, store.write():
        other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


def test_a_second_writer_waits_then_gets_a_retryable_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    with open_store(url) as first, open_store(url, busy_timeout_ms=50) as second:
        with first.write(), pytest.raises(StoreError) as raised, second.write():
            pass
        assert raised.value.retryable
        with second.write() as uow:  # the lock is free again
            uow.ensure_campaign("spring", default_region="CN", now=NOW)


def test_a_read_does_not_block_a_writer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    with open_store(url) as first, open_store(url, busy_timeout_ms=50) as second:
        with first.read() as reader:
            assert reader.campaign_names() == []
            with second.write() as writer:
                writer.ensure_campaign("spring", default_region="CN", now=NOW)
            assert reader.campaign_names() == []  # a read unit keeps its snapshot
        with first.read() as reader:
            assert reader.campaign_names() == ["spring"]


def test_a_read_unit_sees_one_snapshot(store: Store) -> None:
    with store.read() as reader:
        assert reader.campaign_names() == []
        with store.write() as writer:
            writer.ensure_campaign("spring", default_region="CN", now=NOW)
        assert reader.campaign_names() == []
