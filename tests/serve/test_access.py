"""Access control for `dialer serve`: roles and scopes, API keys, users, the bootstrap key,
credentials from HTTP headers, and the `access` CLI, on real SQLite and PostgreSQL stores."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner, Result

from dialer.cli.access import app
from dialer.errors import UsageError
from dialer.serve.access import (
    ROLE_SCOPES,
    AccessError,
    Principal,
    Role,
    Scope,
    authenticate_key,
    authenticate_user,
    create_api_key,
    create_user,
    disable_user,
    ensure_admin_key,
    hash_password,
    list_api_keys,
    list_users,
    parse_role,
    principal_from_headers,
    revoke_api_key,
    set_password,
    verify_password,
)
from dialer.store import Store, open_store
from dialer.store.schema import api_keys, users

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
PASSWORD = "correct horse battery"
KEY_FORMAT = re.compile(r"dk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
S = Scope


def new_key(store: Store, role: Role = Role.INTEGRATION, name: str = "crm") -> str:
    with store.write() as uow:
        return create_api_key(uow, name=name, role=role, actor="cli:ops", now=NOW)


def new_user(store: Store, username: str = "alice", role: Role = Role.SUPERVISOR) -> None:
    with store.write() as uow:
        create_user(uow, username=username, password=PASSWORD, role=role, actor="cli:ops",
                    now=NOW)


def key_id_of(key: str) -> str:
    return key[3:15]


def secret_of(key: str) -> str:
    return key[16:]


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def audit_text(store: Store) -> str:
    with store.read() as uow:
        entries = uow.audit_entries(limit=1000)
    return json.dumps([[e.actor, e.action, e.subject, e.detail] for e in entries])


# --- roles and scopes ---


@pytest.mark.parametrize(("role", "scopes"), [
    (Role.ADMIN, set(Scope)),
    (Role.SUPERVISOR, {S.CAMPAIGNS_READ, S.CAMPAIGNS_WRITE, S.REPORTS_READ, S.SUPPRESSIONS_READ,
                       S.SUPPRESSIONS_WRITE, S.AGENTS_WRITE, S.LINES_READ, S.METRICS_READ,
                       S.LEADS_WRITE}),
    (Role.AGENT, {S.CAMPAIGNS_READ, S.AGENTS_WRITE, S.SUPPRESSIONS_READ, S.SUPPRESSIONS_WRITE}),
    (Role.QA, {S.CAMPAIGNS_READ, S.CAMPAIGNS_WRITE, S.REPORTS_READ, S.LINES_READ,
               S.SUPPRESSIONS_READ, S.METRICS_READ}),
    (Role.INTEGRATION, {S.CAMPAIGNS_READ, S.LEADS_WRITE, S.SUPPRESSIONS_READ,
                        S.SUPPRESSIONS_WRITE, S.REPORTS_READ, S.METRICS_READ}),
])
def test_each_role_has_exactly_its_scopes(role: Role, scopes: set[Scope]) -> None:
    assert ROLE_SCOPES[role] == scopes
    principal = Principal.of("user", "alice", role)
    assert principal.scopes == scopes
    assert all(principal.allows(scope) == (scope in scopes) for scope in Scope)


def test_only_admins_export_leads_or_manage_access() -> None:
    assert set(ROLE_SCOPES) == set(Role)
    for scope in (S.LEADS_EXPORT, S.ACCESS_ADMIN):
        assert {role for role, scopes in ROLE_SCOPES.items() if scope in scopes} == {Role.ADMIN}
    assert [str(scope) for scope in Scope] == [
        "campaigns:read", "campaigns:write", "leads:write", "leads:export", "reports:read",
        "suppressions:read", "suppressions:write", "agents:write", "lines:read",
        "access:admin", "metrics:read"]


def test_principal_names_itself_for_the_audit_log() -> None:
    assert Principal.of("key", "ab12cd34ef56", Role.QA).actor == "key:ab12cd34ef56"
    assert Principal.of("user", "alice", Role.QA).actor == "user:alice"


def test_an_unknown_role_is_a_usage_error_listing_the_roles() -> None:
    assert parse_role("qa") is Role.QA
    with pytest.raises(UsageError, match="admin, supervisor, agent, qa, integration"):
        parse_role("boss")


# --- API keys ---


def test_key_round_trip(store: Store) -> None:
    key = new_key(store, Role.INTEGRATION)
    assert KEY_FORMAT.fullmatch(key)
    with store.read() as uow:
        principal = authenticate_key(uow, key)
        listed = list_api_keys(uow)
        rows = uow._conn.execute(select(api_keys)).all()
    assert principal == Principal("key", key_id_of(key), Role.INTEGRATION,
                                  ROLE_SCOPES[Role.INTEGRATION])
    assert [(k.key_id, k.name, k.role, k.created_at, k.created_by, k.revoked_at)
            for k in listed] == [(key_id_of(key), "crm", Role.INTEGRATION, NOW, "cli:ops", None)]
    assert rows[0].secret_sha256 == hashlib.sha256(secret_of(key).encode()).hexdigest()
    assert secret_of(key) not in repr(rows) + repr(listed)


def test_keys_are_distinct(store: Store) -> None:
    first, second = new_key(store), new_key(store)
    assert key_id_of(first) != key_id_of(second)
    assert secret_of(first) != secret_of(second)


def test_a_wrong_secret_or_unknown_key_id_is_refused(store: Store) -> None:
    key = new_key(store)
    other = new_key(store)
    with store.read() as uow:
        assert authenticate_key(uow, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert authenticate_key(uow, f"dk_{key_id_of(key)}_{secret_of(other)}") is None
        assert authenticate_key(uow, f"dk_{'0' * 12}_{secret_of(key)}") is None


def test_malformed_keys_are_refused(store: Store) -> None:
    key = new_key(store)
    key_id, secret = key_id_of(key), secret_of(key)
    malformed = [
        "", "dk_", "dk_abc_def", key.upper(), "DK" + key[2:], f"dk_{key_id.upper()}_{secret}",
        f"dk_{key_id}{secret}", f"dk_{key_id}_short", f"{key}\n", f" {key}", f"{key[:-1]}!",
        f"{key}{'x' * 500}", f"Bearer {key}", f"dk_{key_id}_{secret}_", f"dk_{key_id}.{secret}",
    ]
    with store.read() as uow:
        assert [text for text in malformed if authenticate_key(uow, text) is not None] == []
        assert authenticate_key(uow, key) is not None


def test_a_revoked_key_is_refused_and_revoking_is_audited(store: Store) -> None:
    key = new_key(store, Role.AGENT, name="desk 7")
    with store.write() as uow:
        assert revoke_api_key(uow, key_id_of(key), actor="user:root", now=LATER) is True
        assert revoke_api_key(uow, key_id_of(key), actor="user:root", now=LATER) is False
    with store.read() as uow:
        assert authenticate_key(uow, key) is None
        assert list_api_keys(uow)[0].revoked_at == LATER
        entries = uow.audit_entries(subject=f"key:{key_id_of(key)}")
    assert [(e.action, e.actor, e.detail) for e in entries] == [
        ("access.key_revoked", "user:root", {"name": "desk 7", "role": "agent"}),
        ("access.key_created", "cli:ops", {"name": "desk 7", "role": "agent"}),
    ]
    assert secret_of(key) not in audit_text(store)


def test_revoking_needs_a_known_key_id_and_never_echoes_a_pasted_key(store: Store) -> None:
    key = new_key(store)
    with store.write() as uow, pytest.raises(AccessError, match="no API key") as unknown:
        revoke_api_key(uow, "0" * 12, actor="cli:ops", now=LATER)
    with store.write() as uow, pytest.raises(AccessError, match="not an API key id") as pasted:
        revoke_api_key(uow, key, actor="cli:ops", now=LATER)
    assert secret_of(key) not in str(pasted.value) + str(unknown.value)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_key_needs_a_name(store: Store, name: str) -> None:
    with store.write() as uow, pytest.raises(AccessError, match="key name"):
        create_api_key(uow, name=name, role=Role.QA, actor="cli:ops", now=NOW)


def test_a_naive_time_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="aware"), store.write() as uow:
        create_api_key(uow, name="crm", role=Role.QA, actor="cli:ops", now=NOW.replace(tzinfo=None))
    with store.read() as uow:
        assert list_api_keys(uow) == []


# --- users ---


def test_user_round_trip(store: Store) -> None:
    new_user(store, "alice", Role.QA)
    with store.read() as uow:
        principal = authenticate_user(uow, "alice", PASSWORD)
        listed = list_users(uow)
        stored = uow._conn.execute(select(users.c.password_hash)).scalar_one()
    assert principal == Principal("user", "alice", Role.QA, ROLE_SCOPES[Role.QA])
    assert [(u.username, u.role, u.created_at, u.created_by, u.disabled_at) for u in listed] == [
        ("alice", Role.QA, NOW, "cli:ops", None)]
    assert re.fullmatch(r"scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}", stored)
    assert PASSWORD not in stored


def test_a_wrong_password_or_unknown_user_is_refused(store: Store) -> None:
    new_user(store)
    with store.read() as uow:
        assert authenticate_user(uow, "alice", PASSWORD + "!") is None
        assert authenticate_user(uow, "alice", "") is None
        assert authenticate_user(uow, "Alice", PASSWORD) is None
        assert authenticate_user(uow, "bob", PASSWORD) is None
        assert authenticate_user(uow, "", PASSWORD) is None
        assert authenticate_user(uow, "alice", "x" * 5000) is None


def test_a_disabled_user_is_refused(store: Store) -> None:
    new_user(store)
    with store.write() as uow:
        assert disable_user(uow, "alice", actor="user:root", now=LATER) is True
        assert disable_user(uow, "alice", actor="user:root", now=LATER) is False
    with store.read() as uow:
        assert authenticate_user(uow, "alice", PASSWORD) is None
        assert list_users(uow)[0].disabled_at == LATER
    with store.write() as uow, pytest.raises(AccessError, match="no user called 'bob'"):
        disable_user(uow, "bob", actor="user:root", now=LATER)


def test_a_new_password_replaces_the_old(store: Store) -> None:
    new_user(store)
    with store.write() as uow:
        set_password(uow, "alice", password="a much better passphrase", actor="user:alice",
                     now=LATER)
    with store.read() as uow:
        assert authenticate_user(uow, "alice", PASSWORD) is None
        assert authenticate_user(uow, "alice", "a much better passphrase") is not None
    with store.write() as uow, pytest.raises(AccessError, match="at least 12"):
        set_password(uow, "alice", password="short", actor="user:alice", now=LATER)


@pytest.mark.parametrize("password", ["", "eleven char", "x" * 1025])
def test_a_short_password_is_refused(store: Store, password: str) -> None:
    with store.write() as uow, pytest.raises(AccessError, match="at least 12 characters"):
        create_user(uow, username="alice", password=password, role=Role.QA, actor="cli:ops",
                    now=NOW)
    with store.read() as uow:
        assert list_users(uow) == []


@pytest.mark.parametrize(("username", "complaint"), [
    ("", "empty or only whitespace"), ("   ", "empty or only whitespace"),
    ("\t\n", "empty or only whitespace"), ("al ice", "no spaces"), ("al:ice", "':'"),
    ("al\x00ice", "control"), ("a" * 201, "at most 200"),
])
def test_a_malformed_username_is_refused(store: Store, username: str, complaint: str) -> None:
    with store.write() as uow, pytest.raises(AccessError, match=re.escape(complaint)):
        create_user(uow, username=username, password=PASSWORD, role=Role.QA, actor="cli:ops",
                    now=NOW)


def test_a_username_is_taken_once(store: Store) -> None:
    new_user(store)
    with store.write() as uow, pytest.raises(AccessError, match="already exists"):
        create_user(uow, username="alice", password=PASSWORD, role=Role.ADMIN, actor="cli:ops",
                    now=NOW)


def test_user_changes_are_audited_without_passwords(store: Store) -> None:
    new_user(store, "alice", Role.AGENT)
    with store.write() as uow:
        set_password(uow, "alice", password="another long secret", actor="user:alice", now=LATER)
        disable_user(uow, "alice", actor="user:root", now=LATER)
    with store.read() as uow:
        entries = uow.audit_entries(subject="user:alice")
    assert [(e.action, e.actor, e.detail) for e in reversed(entries)] == [
        ("access.user_created", "cli:ops", {"role": "agent"}),
        ("access.password_changed", "user:alice", {}),
        ("access.user_disabled", "user:root", {"role": "agent"}),
    ]
    text = audit_text(store)
    assert PASSWORD not in text
    assert "another long secret" not in text
    assert "scrypt" not in text


@pytest.mark.parametrize("stored", [
    "", "scrypt", "bcrypt$16384$8$1$AAAA$AAAA", "scrypt$16384$8$1$not base64!$AAAA",
    "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA", "scrypt$2097152$8$1$AAAA$AAAA",
    "scrypt$16384$8$1$AAAA$", "scrypt$x$8$1$AAAA$AAAA",
])
def test_a_stored_hash_that_is_not_ours_never_matches(stored: str) -> None:
    assert verify_password(PASSWORD, stored) is False


def test_hashes_are_salted() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second
    assert verify_password(PASSWORD, first)
    assert verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD.upper(), first)


# --- bootstrap ---


def test_the_bootstrap_admin_key_is_created_once(store: Store) -> None:
    key = ensure_admin_key(store, now=NOW)
    assert key is not None
    assert ensure_admin_key(store, now=LATER) is None
    with store.read() as uow:
        principal = authenticate_key(uow, key)
        listed = list_api_keys(uow)
        entries = uow.audit_entries()
    assert principal is not None
    assert principal.role is Role.ADMIN
    assert [(k.name, k.created_by) for k in listed] == [("bootstrap", "system:bootstrap")]
    assert [e.action for e in entries] == ["access.key_created"]
    assert secret_of(key) not in audit_text(store)


def test_no_bootstrap_key_while_an_admin_exists(store: Store) -> None:
    new_user(store, "root", Role.ADMIN)
    assert ensure_admin_key(store, now=NOW) is None
    with store.write() as uow:
        disable_user(uow, "root", actor="cli:ops", now=NOW)
    assert ensure_admin_key(store, now=NOW) is not None


def test_a_bootstrap_key_again_once_every_admin_key_is_revoked(store: Store) -> None:
    admin = new_key(store, Role.ADMIN)
    new_key(store, Role.INTEGRATION)
    assert ensure_admin_key(store, now=NOW) is None
    with store.write() as uow:
        revoke_api_key(uow, key_id_of(admin), actor="cli:ops", now=NOW)
    assert ensure_admin_key(store, now=LATER) is not None
    assert ensure_admin_key(store, now=LATER) is None


def test_workers_starting_together_create_one_bootstrap_key(store: Store) -> None:
    start = threading.Barrier(4)

    def bootstrap(_: int) -> str | None:
        start.wait()
        return ensure_admin_key(store, now=NOW)

    with ThreadPoolExecutor(4) as pool:
        keys = [key for key in pool.map(bootstrap, range(4)) if key is not None]
    assert len(keys) == 1
    with store.read() as uow:
        assert len(list_api_keys(uow)) == 1


def test_a_stored_role_this_code_does_not_know_is_refused(store: Store) -> None:
    key = new_key(store, Role.ADMIN)
    new_user(store, "alice", Role.ADMIN)
    with store.write() as uow:
        uow._conn.execute(update(api_keys).values(role="root"))
        uow._conn.execute(update(users).values(role="root"))
    with store.read() as uow:
        assert authenticate_key(uow, key) is None
        assert authenticate_user(uow, "alice", PASSWORD) is None


# --- HTTP headers ---


def test_credentials_from_headers(store: Store) -> None:
    key = new_key(store, Role.INTEGRATION)
    new_user(store, "alice", Role.AGENT)
    with store.read() as uow:
        by_bearer = principal_from_headers(uow, f"Bearer {key}", None)
        by_lowercase = principal_from_headers(uow, f"bearer  {key} ", None)
        by_header = principal_from_headers(uow, None, key)
        by_password = principal_from_headers(uow, basic("alice", PASSWORD), None)
        by_basic_lowercase = principal_from_headers(uow, basic("alice", PASSWORD).lower()[:6]
                                                    + basic("alice", PASSWORD)[6:], None)
    assert by_bearer is not None
    assert by_bearer.actor == f"key:{key_id_of(key)}"
    assert by_bearer == by_lowercase == by_header
    assert by_password == Principal("user", "alice", Role.AGENT, ROLE_SCOPES[Role.AGENT])
    assert by_basic_lowercase == by_password


def test_a_password_may_hold_a_colon(store: Store) -> None:
    with store.write() as uow:
        create_user(uow, username="bob", password="with:colons:inside", role=Role.QA,
                    actor="cli:ops", now=NOW)
    with store.read() as uow:
        assert principal_from_headers(uow, basic("bob", "with:colons:inside"), None) is not None


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


NOT_UTF8 = b64(b"\xff\xfe:" + PASSWORD.encode())


def test_malformed_or_ambiguous_headers_give_no_principal(store: Store) -> None:
    key = new_key(store)
    new_user(store)
    headers = [
        (None, None), ("", None), (None, ""), ("Bearer", None), ("Bearer ", None),
        (f"Token {key}", None), (key, None), ("Basic", None), ("Basic !!!notbase64", None),
        (f"Basic {b64(b'alice')}", None), (f"Basic {b64(b':' + PASSWORD.encode())}", None),
        (f"Basic {b64(b'alice:' + PASSWORD.encode())}!", None), (f"Basic {NOT_UTF8}", None),
        ("Basic ålice", None), ("Digest username=alice", None), (f"Basic alice:{PASSWORD}", None),
        (f"Bearer {key}", key), (basic("alice", PASSWORD), key), (None, f"Bearer {key}"),
        (f"Basic {key}", None), (f"Bearer {basic('alice', PASSWORD)[6:]}", None),
    ]
    with store.read() as uow:
        accepted = [pair for pair in headers if principal_from_headers(uow, *pair) is not None]
        assert principal_from_headers(uow, f"Bearer {key}", None) is not None
    assert accepted == []


# --- the CLI ---


def cli(db: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "--db", db], input=stdin)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dialer.db'}"


def test_cli_key_create_list_revoke(db: str) -> None:
    created = cli(db, "key-create", "--name", "crm", "--role", "integration", "--by", "ops")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert KEY_FORMAT.fullmatch(key)
    assert "cannot be shown again" in created.stderr
    assert secret_of(key) not in created.stderr

    listed = cli(db, "key-list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert rows == [{"key_id": key_id_of(key), "name": "crm", "role": "integration",
                     "created_at": rows[0]["created_at"], "created_by": "ops",
                     "revoked_at": None}]
    table = cli(db, "key-list").stdout
    assert key_id_of(key) in table
    assert secret_of(key) not in listed.stdout + table

    assert "revoked API key" in cli(db, "key-revoke", key_id_of(key)).stdout
    assert "already revoked" in cli(db, "key-revoke", key_id_of(key)).stdout
    with open_store(db) as store, store.read() as uow:
        assert authenticate_key(uow, key) is None
    assert secret_of(key) not in audit_text_at(db)


def audit_text_at(db: str) -> str:
    with open_store(db) as store:
        return audit_text(store)


def test_cli_a_bad_role_lists_the_roles(db: str) -> None:
    result = cli(db, "key-create", "--name", "crm", "--role", "boss")
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert all(f"'{role}'" in output for role in Role)


def test_cli_user_add_from_stdin_disable_list(db: str) -> None:
    added = cli(db, "user-add", "alice", "--role", "qa", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert "added user alice (qa)" in added.stdout
    assert PASSWORD not in added.output
    with open_store(db) as store, store.read() as uow:
        assert authenticate_user(uow, "alice", PASSWORD) is not None

    assert "disabled user alice" in cli(db, "user-disable", "alice").stdout
    rows = [json.loads(line) for line in cli(db, "user-list", "--json").stdout.splitlines()]
    assert [(row["username"], row["role"], row["disabled_at"] is not None) for row in rows] == [
        ("alice", "qa", True)]
    assert "alice" in cli(db, "user-list").stdout
    with open_store(db) as store, store.read() as uow:
        assert authenticate_user(uow, "alice", PASSWORD) is None
    assert PASSWORD not in audit_text_at(db)


def test_cli_user_add_prompts_twice_without_echo(db: str) -> None:
    added = cli(db, "user-add", "bob", "--role", "admin", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    assert PASSWORD not in added.output
    mismatch = cli(db, "user-add", "carol", "--role", "agent",
                   stdin=f"{PASSWORD}\nsomething else!!\n{PASSWORD}\n{PASSWORD}\n")
    assert mismatch.exit_code == 0, mismatch.output
    assert "do not match" in mismatch.output
    with open_store(db) as store, store.read() as uow:
        assert [user.username for user in list_users(uow)] == ["bob", "carol"]
        assert authenticate_user(uow, "carol", PASSWORD) is not None


def test_cli_refuses_a_short_password_and_an_empty_stdin(db: str) -> None:
    short = cli(db, "user-add", "alice", "--role", "qa", "--password-stdin", stdin="short\n")
    assert isinstance(short.exception, AccessError)
    assert "at least 12" in str(short.exception)
    empty = cli(db, "user-add", "alice", "--role", "qa", "--password-stdin", stdin="")
    assert isinstance(empty.exception, UsageError)
    with open_store(db) as store, store.read() as uow:
        assert list_users(uow) == []


def test_cli_user_password(db: str) -> None:
    cli(db, "user-add", "alice", "--role", "qa", "--password-stdin", stdin=PASSWORD + "\n")
    changed = cli(db, "user-password", "alice", "--password-stdin",
                  stdin="a brand new passphrase\r\n")
    assert changed.exit_code == 0, changed.output
    with open_store(db) as store, store.read() as uow:
        assert authenticate_user(uow, "alice", "a brand new passphrase") is not None
    unknown = cli(db, "user-password", "nobody", "--password-stdin", stdin=PASSWORD + "\n")
    assert isinstance(unknown.exception, AccessError)
