"""Key rotation, the database's key check, `dialer keys`, and migration 0008 encrypting a
store written in plaintext (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from typer.testing import CliRunner

from dialer.cli.keys import app as keys_app
from dialer.errors import ConfigError, StoreError
from dialer.store import (
    DataKeys,
    NewAttempt,
    NewLead,
    Store,
    SuppressionScope,
    open_store,
    reencrypt,
)
from dialer.store.crypto import DATA_KEYS_ENV, HASH_KEY_ENV, new_key_text
from dialer.store.engine import WRITE_OPTION, create_store_engine, normalize_url
from dialer.store.rotation import key_usage
from dialer.store.schema import ENCRYPTED, metadata
from dialer.store.store import alembic_config
from rules.number_status import NumberStatus, NumberStatusRecord

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
HASH = new_key_text()
A, B = f"a:{new_key_text()}", f"b:{new_key_text()}"
NUMBERS = [f"+86139{i:08d}" for i in range(7)]


def write(store: Store, numbers: list[str], campaign: str = "spring") -> int:
    with store.write() as uow:
        campaign_id = uow.ensure_campaign(campaign, default_region="CN", now=NOW)
        list_id = uow.create_list(campaign_id, source="crm", file_name="f.csv",
                                  sha256=uuid.uuid4().hex, now=NOW)
        uow.insert_leads([NewLead(
            campaign_id=campaign_id, list_id=list_id, row_number=i, e164=e164, raw=e164,
            attributes={"name": f"客户{i}"}, region="CN", number_type="mobile",
            timezones=("Asia/Shanghai",), carrier="", created_at=NOW)
            for i, e164 in enumerate(numbers)])
        leads = uow.find_leads(campaign_id, numbers)
        uow.record_attempts([NewAttempt(attempt_id=uuid.uuid4().hex, campaign_id=campaign_id,
                                        lead_id=leads[e164].id, e164=e164, trunk="t",
                                        caller_id="+862100000000", placed_at=NOW)
                             for e164 in numbers])
        for e164 in numbers[:2]:
            uow.add_suppression(e164, scope=SuppressionScope.GLOBAL, campaign=None,
                                reason="opt-out", actor="t", now=NOW)
            uow.put_number_status(NumberStatusRecord(
                e164=e164, status=NumberStatus.VACANT, observed_at=NOW, source="sip"), actor="t")
    return campaign_id


def read_all(store: Store, campaign_id: int) -> tuple[object, ...]:
    with store.read() as uow:
        return (sorted((lead.e164, lead.raw, lead.attributes["name"])
                       for lead in uow.leads_sample(campaign_id, 100)),
                sorted(row.e164 for row in uow.attempt_rows()),
                [s.e164 for s in uow.list_suppressions()],
                sorted(uow.number_statuses(NUMBERS)))


def test_rotation_moves_every_value_to_the_new_key(store_url: str) -> None:
    with open_store(store_url, keys=DataKeys.parse(A, HASH)) as store:
        campaign_id = write(store, NUMBERS[:5])
        before = read_all(store, campaign_id)
    with open_store(store_url, keys=DataKeys.parse(f"{B},{A}", HASH)) as store:
        assert read_all(store, campaign_id) == before  # A still decrypts
        write(store, NUMBERS[5:], campaign="autumn")  # new values under B
        before = read_all(store, campaign_id)
        assert set(key_usage(store)) == {"a", "b"}
        rewritten = reencrypt(store, batch=2)  # several batches per table
        assert set(rewritten) == {f"{t}.{c}" for t, cs in ENCRYPTED.items() for c in cs}
        assert rewritten["leads.e164"] == 5
        assert rewritten["suppressions.e164"] == rewritten["number_status.e164"] == 2
        assert set(key_usage(store)) == {"b"}
        assert sum(reencrypt(store).values()) == 0  # idempotent
    with open_store(store_url, keys=DataKeys.parse(B, HASH)) as store:  # A dropped
        assert read_all(store, campaign_id) == before
        with store.read() as uow:
            assert uow.suppressed_e164s(NUMBERS, campaign=None) == {*NUMBERS[:2], *NUMBERS[5:]}
    with open_store(store_url, keys=DataKeys.parse(A, HASH)) as store, \
            pytest.raises(StoreError, match="'b', which is not configured"):
        read_all(store, campaign_id)


def test_another_hash_key_or_a_reused_key_id_is_refused(store_url: str) -> None:
    open_store(store_url, keys=DataKeys.parse(A, HASH)).close()
    with pytest.raises(ConfigError, match=f"{HASH_KEY_ENV} .* is not the hash key") as raised:
        open_store(store_url, keys=DataKeys.parse(A, new_key_text()))
    assert HASH not in str(raised.value)
    with pytest.raises(ConfigError, match=r"data key 'a' .* a new key needs a new id"):
        open_store(store_url, keys=DataKeys.parse(f"a:{new_key_text()}", HASH))
    with pytest.raises(ConfigError, match="data key 'a'"):
        open_store(store_url, migrate=False, keys=DataKeys.parse(f"a:{new_key_text()}", HASH))
    open_store(store_url, keys=DataKeys.parse(f"{B},{A}", HASH)).close()  # a new id is fine
    with pytest.raises(ConfigError, match="data key 'b'"):
        open_store(store_url, keys=DataKeys.parse(f"b:{new_key_text()}", HASH))


def test_the_keys_command_rotates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'd.db'}"
    runner = CliRunner()
    created = runner.invoke(keys_app, ["new", "b"])
    assert created.exit_code == 0, created.output
    entry = created.stdout.strip()
    assert entry.startswith("b:")
    monkeypatch.setenv(DATA_KEYS_ENV, A)
    monkeypatch.setenv(HASH_KEY_ENV, HASH)
    with open_store(url) as store:
        write(store, NUMBERS)
    monkeypatch.setenv(DATA_KEYS_ENV, f"{entry},{A}")
    status = json.loads(runner.invoke(keys_app, ["status", "--db", url, "--json"]).stdout)
    assert status["current"] == "b"
    assert set(status["stored_values"]) == {"a"}
    done = runner.invoke(keys_app, ["reencrypt", "--db", url, "--json", "--batch", "3"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["rewritten"]["leads.attributes"] == len(NUMBERS)
    shown = runner.invoke(keys_app, ["status", "--db", url])
    assert "current" in shown.stdout
    assert set(json.loads(runner.invoke(
        keys_app, ["status", "--db", url, "--json"]).stdout)["stored_values"]) == {"b"}
    assert runner.invoke(keys_app, ["new", "bad id"]).exit_code != 0
    assert len(runner.invoke(keys_app, ["new", "--hash"]).stdout.strip()) == 44


# --- migration 0008 on a store written in plaintext ---


def plaintext_store(url: str) -> None:
    """A store at revision 0007 holding numbers, names and audit entries in plaintext."""
    engine = create_store_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, "0007")
                _plaintext_rows(conn)
    finally:
        engine.dispose()


def _plaintext_rows(conn: sa.Connection) -> None:
    sql = conn.exec_driver_sql
    at = "2026-11-24 10:00:00+00:00"
    sql(f"INSERT INTO campaigns (id, name, default_region, created_at) "
        f"VALUES (1, 'spring', 'CN', '{at}')")
    sql(f"INSERT INTO lead_lists (id, campaign_id, file_name, content_sha256, imported_at) "
        f"VALUES (1, 1, 'f.csv', '{'0' * 64}', '{at}')")
    for i, e164 in enumerate(NUMBERS, start=1):
        sql(f"INSERT INTO leads (id, campaign_id, list_id, row_number, e164, raw, attributes,"
            f" timezones, next_attempt_at, created_at) VALUES ({i}, 1, 1, {i}, '{e164}', "
            f"'{e164[3:]}', '{{\"name\": \"客户{i}\"}}', 'Asia/Shanghai', '{at}', '{at}')")
        sql(f"INSERT INTO attempts (attempt_id, campaign_id, lead_id, e164, trunk, caller_id,"
            f" placed_at, created_at, disposition) VALUES ('a{i}', 1, {i}, '{e164}', 't', "
            f"'+862100000000', '{at}', '{at}', 'busy')")
    sql(f"INSERT INTO suppressions (e164, scope, campaign, reason, created_at, created_by) "
        f"VALUES ('{NUMBERS[0]}', 'global', '', 'opt-out', '{at}', 't')")
    sql(f"INSERT INTO number_status (e164, status, observed_at, source) "
        f"VALUES ('{NUMBERS[1]}', 'vacant', '{at}', 'sip')")
    sql(f"INSERT INTO audit_log (at, actor, action, subject) VALUES "
        f"('{at}', 't', 'suppression.added', '{NUMBERS[0]}'), "
        f"('{at}', 't', 'leads.import', 'campaign:spring')")


def test_migration_0008_encrypts_a_plaintext_store(store_url: str) -> None:
    plaintext_store(store_url)
    keys = DataKeys.parse(A, HASH)
    with open_store(store_url, keys=keys) as store:
        with store.read() as uow:
            leads = uow.leads_sample(1, 100)
            raw = [str(value) for table in metadata.sorted_tables
                   for row in uow._conn.execute(sa.select(table)) for value in row]
            subjects = [e.subject for e in uow.audit_entries()]
            audited = uow.audit_entries(subject=NUMBERS[0])
        assert [(lead.e164, lead.raw, lead.attributes) for lead in leads] == [
            (e164, e164[3:], {"name": f"客户{i}"}) for i, e164 in enumerate(NUMBERS, start=1)]
        assert not [v for v in raw for e164 in NUMBERS if e164[3:] in v]
        assert not [v for v in raw if "客户" in v]
        assert subjects == ["campaign:spring", f"number:{keys.lookup_hash(NUMBERS[0])}"]
        assert [e.action for e in audited] == ["suppression.added"]
        with store.write() as uow:
            claimed = uow.claim_leads(campaign_id=1, campaign="spring", limit=100, now=NOW,
                                      max_attempts=5)
            assert sorted(c.e164 for c in claimed) == NUMBERS[2:]  # suppressed, dead held
            assert uow.existing_e164s(1, NUMBERS) == set(NUMBERS)
            assert not uow.add_suppression(NUMBERS[0], scope=SuppressionScope.GLOBAL,
                                           campaign=None, reason="x", actor="t", now=NOW)
        with store.read() as uow:
            assert sorted(r.e164 for r in uow.attempt_rows("spring")) == NUMBERS
            assert set(key_usage(store)) == {"a"}
