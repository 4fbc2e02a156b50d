"""Who may call `dialer serve`, and what they may do: roles, scopes, API keys and users.

Machines present an API key, `dk_<key_id>_<secret>` (`Authorization: Bearer` or
`X-API-Key`); the key_id is public, only SHA-256 of the 256-bit random secret is stored.
People present a username and password (`Authorization: Basic`), stored as
`scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`.

- a principal's scopes are exactly `ROLE_SCOPES[role]`; endpoints ask `allows(scope)`;
- authentication answers None, never an error, for anything but an active principal:
  malformed, unknown, wrong secret or password, revoked, disabled, an unknown role;
- every change is audited in the same transaction; secrets and passwords never reach the
  audit log, the log or an exception message;
- nothing here knows FastAPI: the app wraps `principal_from_headers` in a dependency.
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal

from sqlalchemy import Connection, Row, select, text, update

from dialer.errors import UsageError
from dialer.store import ReadUnitOfWork, Store, UnitOfWork
from dialer.store.schema import api_keys, users

logger = logging.getLogger(__name__)

KEY_PREFIX = "dk_"
MIN_PASSWORD_LENGTH = 12
#: Longer passwords are refused, so that a request cannot make scrypt chew megabytes.
MAX_PASSWORD_LENGTH = 1024
_MAX_LABEL = 200  # the width of the name and username columns
_KEY_ID = re.compile(r"[0-9a-f]{12}")
_KEY = re.compile(r"dk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})")
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_SALT, _SCRYPT_LEN = 2**14, 8, 1, 16, 32
#: Held while bootstrapping, so that workers starting together create one admin key.
_BOOTSTRAP_LOCK_KEY = 0x6469616C6B6579  # "dialkey", for pg_advisory_xact_lock


class AccessError(UsageError):
    """An access change that cannot be done: an unknown role, key or user, a username
    that is taken or malformed, a password too short or too long. Never retryable."""


class Role(enum.StrEnum):
    """What a principal is; its scopes follow from it (`ROLE_SCOPES`)."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    QA = "qa"
    INTEGRATION = "integration"


class Scope(enum.StrEnum):
    """One kind of thing a principal may do."""

    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"  # create, start, pause, stop
    LEADS_WRITE = "leads:write"  # add leads, trigger events
    LEADS_EXPORT = "leads:export"  # lead data and the attempt log unmasked; CSV export
    REPORTS_READ = "reports:read"  # reports and the attempt log, numbers masked
    SUPPRESSIONS_READ = "suppressions:read"  # check a number
    SUPPRESSIONS_WRITE = "suppressions:write"  # add, remove
    AGENTS_WRITE = "agents:write"  # agent state changes
    LINES_READ = "lines:read"
    ACCESS_ADMIN = "access:admin"  # keys and users
    METRICS_READ = "metrics:read"


ROLE_SCOPES: Mapping[Role, frozenset[Scope]] = MappingProxyType({
    role: frozenset(Scope(name) for name in names.split()) for role, names in {
        Role.ADMIN: " ".join(Scope),
        Role.SUPERVISOR: "campaigns:read campaigns:write leads:write reports:read agents:write "
                         "suppressions:read suppressions:write lines:read metrics:read",
        # an agent records opt-outs, so it may write suppressions
        Role.AGENT: "campaigns:read agents:write suppressions:read suppressions:write",
        Role.QA: "campaigns:read campaigns:write reports:read lines:read suppressions:read "
                 "metrics:read",
        Role.INTEGRATION: "campaigns:read leads:write suppressions:read suppressions:write "
                          "reports:read metrics:read",
    }.items()
})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key (`name` is its key_id) or a user (`name` is the username)."""

    kind: Literal["key", "user"]
    name: str
    role: Role
    scopes: frozenset[Scope]

    @classmethod
    def of(cls, kind: Literal["key", "user"], name: str, role: Role) -> Principal:
        return cls(kind, name, role, ROLE_SCOPES[role])

    @property
    def actor(self) -> str:
        """The audit log's name for this principal: `key:<key_id>` or `user:<username>`."""
        return f"{self.kind}:{self.name}"

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyInfo:
    """An API key as listings show it: never its secret, nor the secret's hash."""

    key_id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    """A user as listings show them: never the password hash."""

    username: str
    role: Role
    created_at: datetime
    created_by: str
    disabled_at: datetime | None


def parse_role(value: str) -> Role:
    """`value` as a Role; AccessError naming the roles when it is none of them."""
    try:
        return Role(value)
    except ValueError:
        raise AccessError(f"unknown role {value!r}; the roles are: {', '.join(Role)}") from None


def create_api_key(uow: UnitOfWork, *, name: str, role: Role | str, actor: str,
                   now: datetime) -> str:
    """A new key, `dk_<key_id>_<secret>`: returned this once, and never again."""
    role, name = parse_role(role), name.strip()
    if not name or len(name) > _MAX_LABEL:
        raise AccessError(f"a key name needs 1 to {_MAX_LABEL} characters")
    # 48 random bits: a clash (the unique index refuses it) needs millions of keys to matter
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    _conn(uow).execute(api_keys.insert().values(
        key_id=key_id, secret_sha256=_sha256(secret), name=name, role=role.value,
        created_at=now, created_by=actor,
    ))
    uow.audit("access.key_created", actor=actor, subject=f"key:{key_id}",
              detail={"name": name, "role": role.value}, now=now)
    logger.info("API key %s created with role %s", key_id, role.value)
    return f"{KEY_PREFIX}{key_id}_{secret}"


def list_api_keys(uow: ReadUnitOfWork) -> list[ApiKeyInfo]:
    """Every key, revoked ones included, oldest first."""
    rows = _conn(uow).execute(select(api_keys).order_by(api_keys.c.id))
    return [ApiKeyInfo(key_id=row.key_id, name=row.name, role=Role(row.role),
                       created_at=row.created_at, created_by=row.created_by,
                       revoked_at=row.revoked_at) for row in rows]


def revoke_api_key(uow: UnitOfWork, key_id: str, *, actor: str, now: datetime) -> bool:
    """Revoke a key: True if it was active, False if already revoked; AccessError if unknown."""
    if not _KEY_ID.fullmatch(key_id):  # not echoed: people paste whole keys here
        raise AccessError("that is not an API key id (12 hex characters, as key-list shows)")
    conn = _conn(uow)
    row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if row is None:
        raise AccessError(f"no API key with id {key_id}")
    if row.revoked_at is not None:
        return False
    conn.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=now))
    uow.audit("access.key_revoked", actor=actor, subject=f"key:{key_id}",
              detail={"name": row.name, "role": row.role}, now=now)
    logger.info("API key %s revoked", key_id)
    return True


def authenticate_key(uow: ReadUnitOfWork, presented: str) -> Principal | None:
    """The principal of an active key; None if `presented` is malformed, unknown, carries
    the wrong secret, or was revoked."""
    match = _KEY.fullmatch(presented)
    if match is None:
        return None
    key_id, secret = match.groups()
    row = _conn(uow).execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
    if (row is None or not hmac.compare_digest(row.secret_sha256, _sha256(secret))
            or row.revoked_at is not None):
        return None
    role = _known_role(row.role)
    return None if role is None else Principal.of("key", key_id, role)


def create_user(uow: UnitOfWork, *, username: str, password: str, role: Role | str,
                actor: str, now: datetime) -> None:
    """A new user; AccessError if the name is taken or malformed or the password too short."""
    username, role = _check_username(username), parse_role(role)
    _check_password(password)
    conn = _conn(uow)
    if _user_row(conn, username) is not None:
        raise AccessError(f"a user called {username!r} already exists")
    conn.execute(users.insert().values(
        username=username, password_hash=hash_password(password), role=role.value,
        created_at=now, created_by=actor,
    ))
    uow.audit("access.user_created", actor=actor, subject=f"user:{username}",
              detail={"role": role.value}, now=now)


def set_password(uow: UnitOfWork, username: str, *, password: str, actor: str,
                 now: datetime) -> None:
    """Replace a user's password (a disabled user stays disabled)."""
    _check_password(password)
    conn = _conn(uow)
    _existing_user(conn, username)
    conn.execute(update(users).where(users.c.username == username)
                 .values(password_hash=hash_password(password)))
    uow.audit("access.password_changed", actor=actor, subject=f"user:{username}",
              detail={}, now=now)


def disable_user(uow: UnitOfWork, username: str, *, actor: str, now: datetime) -> bool:
    """Disable a user: True if they were enabled, False if they already were disabled."""
    conn = _conn(uow)
    row = _existing_user(conn, username)
    if row.disabled_at is not None:
        return False
    conn.execute(update(users).where(users.c.username == username).values(disabled_at=now))
    uow.audit("access.user_disabled", actor=actor, subject=f"user:{username}",
              detail={"role": row.role}, now=now)
    return True


def list_users(uow: ReadUnitOfWork) -> list[UserInfo]:
    """Every user, disabled ones included, oldest first."""
    rows = _conn(uow).execute(select(users).order_by(users.c.id))
    return [UserInfo(username=row.username, role=Role(row.role), created_at=row.created_at,
                     created_by=row.created_by, disabled_at=row.disabled_at) for row in rows]


def authenticate_user(uow: ReadUnitOfWork, username: str, password: str) -> Principal | None:
    """The principal of an enabled user whose password matches; None otherwise."""
    if not 0 < len(username) <= _MAX_LABEL or len(password) > MAX_PASSWORD_LENGTH:
        return None
    row = _user_row(_conn(uow), username)
    if row is None:
        # as slow as a wrong password, so that timing does not tell which users exist
        verify_password(password, _decoy_hash())
        return None
    if not verify_password(password, row.password_hash) or row.disabled_at is not None:
        return None
    role = _known_role(row.role)
    return None if role is None else Principal.of("user", row.username, role)


def hash_password(password: str) -> str:
    """`scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>` with a fresh random salt."""
    salt = secrets.token_bytes(_SCRYPT_SALT)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN)
    return "$".join(("scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()))


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored` (False for a stored string that is not ours)."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        cost = (int(n), int(r), int(p))
        salt_bytes, digest = (base64.b64decode(part, validate=True) for part in (salt, expected))
        too_costly = any(value > limit for value, limit in zip(cost, (2**20, 32, 16), strict=True))
        if scheme != "scrypt" or too_costly or not 0 < len(digest) <= 64:
            return False  # not ours, or costly enough to be a denial of service
        return hmac.compare_digest(_scrypt(password, salt_bytes, *cost, len(digest)), digest)
    except ValueError:  # not ours, or scrypt parameters that hashlib refuses
        return False


def ensure_admin_key(store: Store, *, now: datetime) -> str | None:
    """Create and return an admin key named "bootstrap" when nobody could administer
    access (no unrevoked admin key, no enabled admin user); else None. The caller shows it
    once. Workers starting together on PostgreSQL take turns, so only one creates a key."""
    with store.write() as uow:
        conn = _conn(uow)
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _BOOTSTRAP_LOCK_KEY})
        if _admin_exists(conn):
            return None
        key = create_api_key(uow, name="bootstrap", role=Role.ADMIN, actor="system:bootstrap",
                             now=now)
    logger.warning("no admin could manage access: created the bootstrap admin API key")
    return key


def principal_from_headers(uow: ReadUnitOfWork, authorization: str | None,
                           api_key: str | None) -> Principal | None:
    """The principal named by a request's `Authorization` and `X-API-Key` headers.

    `Authorization: Bearer dk_...` or `X-API-Key: dk_...` for a key, `Authorization: Basic
    base64(user:password)` for a user. None when there are no credentials, when they are
    malformed or wrong, or when both headers are given (two credentials are ambiguous).
    """
    if authorization is not None and api_key is not None:
        return None
    if api_key is not None:
        return authenticate_key(uow, api_key.strip())
    if authorization is None:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return authenticate_key(uow, credentials.strip())
    if scheme.lower() == "basic":
        pair = _basic_credentials(credentials.strip())
        return None if pair is None else authenticate_user(uow, *pair)
    return None


def _conn(uow: ReadUnitOfWork) -> Connection:
    # Access owns its two tables; the store's unit of work only lends the transaction.
    return uow._conn


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    memory = 128 * r * (n + p + 2) + 2**20  # what OpenSSL needs, plus room
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r,
                          p=p, maxmem=memory, dklen=length)


@functools.cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def _known_role(value: str) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        logger.warning("refused a principal whose stored role %r this code does not know", value)
        return None


def _check_username(username: str) -> str:
    if not username.strip():
        raise AccessError("a username cannot be empty or only whitespace")
    if len(username) > _MAX_LABEL or any(c.isspace() or c == ":" or not c.isprintable()
                                         for c in username):
        raise AccessError(f"a username has at most {_MAX_LABEL} characters and no spaces, "
                          "':' or control characters")
    return username


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise AccessError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters "
                          f"(and at most {MAX_PASSWORD_LENGTH})")


def _user_row(conn: Connection, username: str) -> Row[Any] | None:
    return conn.execute(select(users).where(users.c.username == username)).first()


def _existing_user(conn: Connection, username: str) -> Row[Any]:
    if (row := _user_row(conn, username)) is None:
        raise AccessError(f"no user called {username!r}")
    return row


def _admin_exists(conn: Connection) -> bool:
    admin = Role.ADMIN.value
    keys = select(api_keys.c.id).where(api_keys.c.role == admin, api_keys.c.revoked_at.is_(None))
    people = select(users.c.id).where(users.c.role == admin, users.c.disabled_at.is_(None))
    return any(conn.execute(query.limit(1)).first() is not None for query in (keys, people))


def _basic_credentials(credentials: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon and username else None
