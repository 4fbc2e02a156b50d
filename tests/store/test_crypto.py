"""Numbers and names encrypted at rest: the keys, the sealed values, and what the
database really holds (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
import logging
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dialer.errors import ConfigError, StoreError
from dialer.store import (
    DataKeys,
    NewAttempt,
    NewLead,
    Store,
    SuppressionScope,
    open_store,
)
from dialer.store.crypto import (
    DATA_KEYS_ENV,
    HASH_KEY_ENV,
    KEY_FILE_ENV,
    load_key_file,
    new_key_text,
)
from dialer.store.schema import metadata
from rules.number_status import NumberStatus, NumberStatusRecord

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
NUMBER = "+8613812345678"
NAME = "诸葛孔明"
RAW = "138 1234 5678"
KEY = new_key_text()
HASH = new_key_text()


def test_a_value_round_trips_with_a_fresh_nonce_each_time() -> None:
    keys = DataKeys.parse(f"k1:{KEY}", HASH)
    first, second = keys.encrypt("leads.e164", NUMBER), keys.encrypt("leads.e164", NUMBER)
    assert first != second
    assert first.startswith("v1:k1:")
    assert NUMBER not in first
    assert keys.decrypt("leads.e164", first) == keys.decrypt("leads.e164", second) == NUMBER
    assert keys.decrypt("leads.raw", keys.encrypt("leads.raw", NAME)) == NAME
    assert keys.decrypt("leads.raw", keys.encrypt("leads.raw", "")) == ""


def test_an_altered_value_does_not_decrypt() -> None:
    keys = DataKeys.parse(f"k1:{KEY}", HASH)
    stored = keys.encrypt("leads.e164", NUMBER)
    prefix, blob = stored.rsplit(":", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    for altered in (f"{prefix}:{base64.b64encode(bytes(raw)).decode()}", stored[:-4],
                    f"{prefix}:***"):
        with pytest.raises(StoreError, match=r"leads\.e164") as raised:
            keys.decrypt("leads.e164", altered)
        assert NUMBER not in str(raised.value)


def test_a_value_moved_to_another_column_does_not_decrypt() -> None:
    keys = DataKeys.parse(f"k1:{KEY}", HASH)
    stored = keys.encrypt("leads.e164", NUMBER)
    with pytest.raises(StoreError, match=r"suppressions\.e164"):
        keys.decrypt("suppressions.e164", stored)


def test_an_unknown_key_id_or_a_plaintext_value_is_a_clear_error() -> None:
    old = DataKeys.parse(f"old:{KEY}", HASH)
    new = DataKeys.parse(f"new:{new_key_text()}", HASH)
    with pytest.raises(StoreError, match="'old', which is not configured") as raised:
        new.decrypt("leads.e164", old.encrypt("leads.e164", NUMBER))
    assert DATA_KEYS_ENV in str(raised.value)
    with pytest.raises(StoreError, match="not an encrypted value") as raised:
        new.decrypt("leads.e164", NUMBER)
    assert NUMBER not in str(raised.value)


def test_the_lookup_hash_is_keyed_and_stable() -> None:
    keys = DataKeys.parse(f"k1:{KEY}", HASH)
    again = DataKeys.parse(f"k2:{new_key_text()}", HASH)  # other data key, same hash key
    other = DataKeys.parse(f"k1:{KEY}", new_key_text())
    digest = keys.lookup_hash(NUMBER)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert again.lookup_hash(NUMBER) == digest
    assert other.lookup_hash(NUMBER) != digest
    assert keys.lookup_hash("+8613812345679") != digest


def test_older_keys_still_decrypt_and_the_first_one_encrypts() -> None:
    old = DataKeys.parse(f"a:{KEY}", HASH)
    both = DataKeys.from_environment({DATA_KEYS_ENV: f"b:{new_key_text()}, a:{KEY}",
                                      HASH_KEY_ENV: HASH})
    assert both.current_id == "b"
    assert both.key_ids == ("b", "a")
    assert both.decrypt("leads.e164", old.encrypt("leads.e164", NUMBER)) == NUMBER
    assert both.encrypt("leads.e164", NUMBER).startswith("v1:b:")


@pytest.mark.parametrize(("data", "hashed", "message"), [
    ("k1", HASH, f"{DATA_KEYS_ENV}: entry 1 is not `id:base64key`"),
    (f"k1:{KEY},k2", HASH, f"{DATA_KEYS_ENV}: entry 2 is not"),
    ("k1:not base64!", HASH, f"{DATA_KEYS_ENV}: key 'k1' is not valid base64"),
    (f"k1:{base64.b64encode(b'short').decode()}", HASH, "must be 32 bytes"),
    (f"k1:{KEY},k1:{KEY}", HASH, "'k1' appears twice"),
    (f"bad id:{KEY}", HASH, "entry 1 is not"),
    (f"k1:{KEY}", "!!", f"{HASH_KEY_ENV} is not valid base64"),
    (f"k1:{KEY}", base64.b64encode(bytes(16)).decode(), f"{HASH_KEY_ENV} must be 32 bytes"),
    (f"k1:{KEY}", "", f"{DATA_KEYS_ENV} is set but {HASH_KEY_ENV} is not"),
    ("", HASH, f"{HASH_KEY_ENV} is set but {DATA_KEYS_ENV} is not"),
])
def test_garbled_keys_are_a_clear_error_without_key_material(data: str, hashed: str,
                                                             message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        DataKeys.from_environment({DATA_KEYS_ENV: data, HASH_KEY_ENV: hashed})
    assert message in str(raised.value)
    assert KEY not in str(raised.value)
    assert HASH not in str(raised.value)


def test_garbled_environment_stops_open_store(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_KEYS_ENV, "k1:nope")
    monkeypatch.setenv(HASH_KEY_ENV, HASH)
    with pytest.raises(ConfigError, match=DATA_KEYS_ENV):
        open_store(f"sqlite:///{tmp_path / 'd.db'}")
    assert not (tmp_path / "d.db").exists()


def test_without_the_environment_a_key_file_is_made_once_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "config" / "dialer" / "keys.json"
    with caplog.at_level(logging.WARNING, logger="dialer.store.crypto"):
        made = DataKeys.from_environment({KEY_FILE_ENV: str(path)})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert DATA_KEYS_ENV in caplog.text
    assert str(path) in caplog.text
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["hash_key"] not in caplog.text
    caplog.clear()
    again = load_key_file(path)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert again.lookup_hash(NUMBER) == made.lookup_hash(NUMBER)
    assert again.decrypt("leads.e164", made.encrypt("leads.e164", NUMBER)) == NUMBER
    same = DataKeys.parse(document["data_keys"], document["hash_key"])  # the env's syntax
    assert same.fingerprints() == made.fingerprints()


def test_xdg_config_home_holds_the_default_key_file(tmp_path: Path) -> None:
    keys = DataKeys.from_environment({"XDG_CONFIG_HOME": str(tmp_path)})
    assert (tmp_path / "dialer" / "keys.json").is_file()
    assert keys.current_id == "k1"


@pytest.mark.parametrize("content", ["not json", "[]", '{"data_keys": "k1:x"}',
                                     '{"data_keys": "k1:x", "hash_key": "y"}'])
def test_a_garbled_key_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content, encoding="utf-8")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=str(path)):
        load_key_file(path)


def test_no_key_material_in_repr() -> None:
    keys = DataKeys.parse(f"k1:{KEY}", HASH)
    assert repr(keys) == "DataKeys(current='k1', keys=['k1'])"
    assert all(KEY not in value and HASH not in value for value in keys.fingerprints().values())
    fresh = DataKeys.generate("k9")
    assert repr(fresh) == "DataKeys(current='k9', keys=['k9'])"
    assert fresh.fingerprints()["hash"] != keys.fingerprints()["hash"]


# --- what the database holds ---


def fill(store: Store) -> int:
    """One lead with a name, an attempt, a suppression and a number status."""
    with store.write() as uow:
        campaign_id = uow.ensure_campaign("spring", default_region="CN", now=NOW)
        list_id = uow.create_list(campaign_id, source="crm", file_name="f.csv",
                                  sha256=uuid.uuid4().hex, now=NOW)
        uow.insert_leads([NewLead(
            campaign_id=campaign_id, list_id=list_id, row_number=1, e164=NUMBER, raw=RAW,
            attributes={"name": NAME, "order": "A-1"}, region="CN", number_type="mobile",
            timezones=("Asia/Shanghai",), carrier="China Mobile", created_at=NOW)])
        lead = uow.find_lead(campaign_id, NUMBER)
        assert lead is not None
        uow.record_attempts([NewAttempt(attempt_id="a1", campaign_id=campaign_id,
                                        lead_id=lead.id, e164=NUMBER, trunk="t",
                                        caller_id="+862100000000", placed_at=NOW)])
        uow.add_suppression(NUMBER, scope=SuppressionScope.GLOBAL, campaign=None,
                            reason="opt-out", actor="agent", now=NOW)
        uow.put_number_status(NumberStatusRecord(e164=NUMBER, status=NumberStatus.VACANT,
                                                 observed_at=NOW, source="sip"), actor="t")
    return campaign_id


def every_stored_value(store: Store) -> list[str]:
    with store.read() as uow:
        return [str(value) for table in metadata.sorted_tables
                for row in uow._conn.execute(select(table)) for value in row]


SECRETS = (NUMBER, NUMBER.removeprefix("+"), "13812345678", NAME, RAW)


def test_no_row_holds_a_number_or_a_name(store: Store) -> None:
    fill(store)
    values = every_stored_value(store)
    assert len(values) > 50
    assert not [value for value in values for secret in SECRETS if secret in value]


def test_the_sqlite_files_hold_no_number_or_name(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    with open_store(f"sqlite:///{path}") as store:
        fill(store)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("plain.db")]
    content = b"".join(p.read_bytes() for p in files)
    assert b"spring" in content  # the data is there, only sealed
    assert not [s for s in SECRETS if s.encode() in content]


def test_the_store_gives_back_plain_numbers_and_finds_them_by_hash(store: Store) -> None:
    campaign_id = fill(store)
    with store.read() as uow:
        (lead,) = uow.leads_sample(campaign_id, 10)
        assert (lead.e164, lead.raw, lead.attributes["name"]) == (NUMBER, RAW, NAME)
        assert uow.existing_e164s(campaign_id, [NUMBER, "+8613900000000"]) == {NUMBER}
        assert uow.suppressed_e164s([NUMBER], campaign="spring") == {NUMBER}
        assert uow.dead_e164s([NUMBER], now=NOW) == {NUMBER}
        assert [s.e164 for s in uow.list_suppressions(e164=NUMBER)] == [NUMBER]
        assert uow.number_statuses([NUMBER])[NUMBER].status is NumberStatus.VACANT
        assert [row.e164 for row in uow.attempt_rows("spring")] == [NUMBER]
        history = uow.contact_history([NUMBER], since=NOW - timedelta(days=1))
        assert [c.campaign for c in history[NUMBER]] == ["spring"]
        subjects = {e.subject for e in uow.audit_entries(subject=NUMBER)}
    assert subjects == {f"number:{store.keys.lookup_hash(NUMBER)}"}


def test_a_duplicate_number_is_refused_by_its_hash(store: Store) -> None:
    campaign_id = fill(store)
    with store.write() as uow:
        (lead,) = uow.leads_sample(campaign_id, 1)
    again = NewLead(campaign_id=campaign_id, list_id=lead.list_id, row_number=2, e164=NUMBER,
                    raw="", attributes={}, region="CN", number_type="mobile", timezones=(),
                    carrier="", created_at=NOW)
    with pytest.raises(StoreError) as raised, store.write() as uow:
        uow.insert_leads([again])
    assert NUMBER not in str(raised.value)
    with store.write() as uow:
        assert not uow.add_suppression(NUMBER, scope=SuppressionScope.GLOBAL, campaign=None,
                                       reason="again", actor="agent", now=NOW)
        assert uow.remove_suppression(NUMBER, scope=SuppressionScope.GLOBAL, campaign=None,
                                      actor="agent", now=NOW)
        assert uow.suppressed_e164s([NUMBER], campaign=None) == set()


def test_a_suppressed_or_dead_number_is_not_claimed(store: Store) -> None:
    campaign_id = fill(store)
    with store.write() as uow:
        claimed = uow.claim_leads(campaign_id=campaign_id, campaign="spring", limit=5,
                                  now=NOW + timedelta(hours=1), max_attempts=5)
        assert claimed == []
        uow.remove_suppression(NUMBER, scope=SuppressionScope.GLOBAL, campaign=None,
                               actor="agent", now=NOW)
        uow.put_number_status(NumberStatusRecord(
            e164=NUMBER, status=NumberStatus.NORMAL, observed_at=NOW + timedelta(minutes=1),
            source="hlr"), actor="t")
        claimed = uow.claim_leads(campaign_id=campaign_id, campaign="spring", limit=5,
                                  now=NOW + timedelta(hours=1), max_attempts=5)
    assert [(c.e164, c.attributes["name"]) for c in claimed] == [(NUMBER, NAME)]
