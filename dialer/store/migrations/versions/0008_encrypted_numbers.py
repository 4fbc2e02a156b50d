"""Phone numbers and names encrypted at rest, found by a keyed hash.

Adds `e164_hash` (HMAC-SHA256, hex) beside `e164` in leads, attempts, suppressions and
number_status and fills it; encrypts those numbers, and the leads' raw cells and
attributes, under the current data key (`dialer.store.crypto`); then moves the unique
constraints, number_status's primary key and the attempts' history index to the hash, and
drops the old ones. Audit entries about a number get the subject `number:<hash>`. Rows
are rewritten in batches, all in the migration's one transaction: a failure leaves the
database as it was. `key_fingerprints` remembers which keys wrote it.

The plaintext is gone from the tables, not necessarily from the files: freed SQLite pages
and PostgreSQL's dead row versions keep it until `VACUUM` (and backups, until rotated).

The keys are the store's (`open_store(keys=...)`), else the environment's or the key
file's (`DataKeys.from_environment`), as when run by the `alembic` command.

There is no downgrade: it would write every number and name back in plaintext. Restore
the backup taken before upgrading instead.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from dialer.store.crypto import DataKeys

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HASH = sa.String(64)
_OLD_E164 = sa.String(32)
_BATCH = 5000
#: table -> (primary key, its encrypted columns)
_TABLES = {
    "leads": ("id", ("e164", "raw", "attributes")),
    "attempts": ("attempt_id", ("e164",)),
    "suppressions": ("id", ("e164",)),
    "number_status": ("e164", ("e164",)),
}
Rewrite = Callable[[sa.Row[Any]], dict[str, object]]
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def upgrade() -> None:
    if context.is_offline_mode():
        raise NotImplementedError("0008 encrypts the stored numbers: it cannot run as --sql")
    keys = _keys()
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in _TABLES:
        op.add_column(table, sa.Column("e164_hash", _HASH, nullable=True))
        if not sqlite:  # ciphertext is longer than 32 characters; SQLite does not mind
            op.alter_column(table, "e164", type_=sa.Text(), existing_type=_OLD_E164,
                            existing_nullable=False)
    _seal(keys)
    _hide_audit_subjects(keys)
    _switch_leads(sqlite)
    _switch_attempts(sqlite)
    _switch_suppressions(sqlite)
    _switch_number_status(sqlite)
    fingerprints = op.create_table(
        "key_fingerprints",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_key_fingerprints")),
    )
    op.bulk_insert(fingerprints, [{"name": name, "fingerprint": value}
                                  for name, value in keys.fingerprints().items()])


def downgrade() -> None:
    raise NotImplementedError(
        "0008 encrypted the stored phone numbers and names; going back would write them in "
        "plaintext again. Restore the backup taken before the upgrade instead.")


def _keys() -> DataKeys:
    given = context.config.attributes.get("data_keys")
    return given if isinstance(given, DataKeys) else DataKeys.from_environment()


def _seal(keys: DataKeys) -> None:
    """Fill every hash and encrypt every number, raw cell and attribute document."""
    for table, (key, columns) in _TABLES.items():
        seal = {column: keys.encrypter(f"{table}.{column}") for column in columns}

        def encrypted(row: sa.Row[Any], seal: dict[str, Callable[[str], str]] = seal
                      ) -> dict[str, object]:
            return {column: encrypt(row._mapping[column]) for column, encrypt in seal.items()}

        def hashed(row: sa.Row[Any]) -> dict[str, object]:
            return {"e164_hash": keys.lookup_hash(row.e164)}

        def both(row: sa.Row[Any], encrypted: Rewrite = encrypted) -> dict[str, object]:
            return {**hashed(row), **encrypted(row)}

        if table == "number_status":  # its key is the number: hash by it, then seal by hash
            _rewrite(table, key, columns, hashed)
            _rewrite(table, "e164_hash", columns, encrypted)
        else:
            _rewrite(table, key, columns, both)


def _rewrite(name: str, key: str, columns: tuple[str, ...], rewrite: Rewrite) -> None:
    """Update every row of `name` with `rewrite(row)`, `_BATCH` rows at a time in `key`
    order (`key` is not among the columns rewritten)."""
    table = sa.table(name, *{sa.column(c) for c in (key, "e164_hash", *columns)})
    conn = op.get_bind()
    after: object = None
    while True:
        stmt = sa.select(table.c[key].label("key_"), *(table.c[c] for c in columns))
        if after is not None:
            stmt = stmt.where(table.c[key] > after)
        rows = conn.execute(stmt.order_by(table.c[key]).limit(_BATCH)).all()
        if not rows:
            return
        changes = [{"key_": row.key_, **{f"new_{c}": v for c, v in rewrite(row).items()}}
                   for row in rows]
        written = [c.removeprefix("new_") for c in changes[0] if c.startswith("new_")]
        conn.execute(sa.update(table).where(table.c[key] == sa.bindparam("key_"))
                     .values({c: sa.bindparam(f"new_{c}") for c in written}), changes)
        after = rows[-1].key_


def _hide_audit_subjects(keys: DataKeys) -> None:
    """An audit subject that is a number (suppressions, number statuses) becomes
    `number:<lookup hash>`, as the store now writes it."""
    audit = sa.table("audit_log", sa.column("id"), sa.column("subject"))
    conn = op.get_bind()
    after = 0
    while True:
        rows = conn.execute(sa.select(audit.c.id, audit.c.subject)
                            .where(audit.c.id > after, audit.c.subject.like("+%"))
                            .order_by(audit.c.id).limit(_BATCH)).all()
        if not rows:
            return
        changes = [{"key_": row.id, "new_subject": f"number:{keys.lookup_hash(row.subject)}"}
                   for row in rows if _E164.fullmatch(row.subject)]
        if changes:
            conn.execute(sa.update(audit).where(audit.c.id == sa.bindparam("key_"))
                         .values(subject=sa.bindparam("new_subject")), changes)
        after = rows[-1].id


def _switch_leads(sqlite: bool) -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_constraint("uq_leads_campaign_id_e164", type_="unique")
        _finish_columns(batch, sqlite)
        batch.alter_column("attributes", existing_type=sa.Text(), existing_nullable=False,
                           server_default=None)  # '{}' would not decrypt
        batch.create_unique_constraint("uq_leads_campaign_id_e164_hash",
                                       ["campaign_id", "e164_hash"])


def _switch_attempts(sqlite: bool) -> None:
    op.drop_index("ix_attempts_e164_placed_at", table_name="attempts")
    with op.batch_alter_table("attempts") as batch:
        _finish_columns(batch, sqlite)
    op.create_index("ix_attempts_e164_hash_placed_at", "attempts", ["e164_hash", "placed_at"])


def _switch_suppressions(sqlite: bool) -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_constraint("uq_suppressions_e164_scope_campaign", type_="unique")
        _finish_columns(batch, sqlite)
        batch.create_unique_constraint("uq_suppressions_e164_hash_scope_campaign",
                                       ["e164_hash", "scope", "campaign"])


def _switch_number_status(sqlite: bool) -> None:
    with op.batch_alter_table("number_status") as batch:
        batch.drop_constraint("pk_number_status", type_="primary")
        _finish_columns(batch, sqlite)
        batch.create_primary_key("pk_number_status", ["e164_hash"])


def _finish_columns(batch: Any, sqlite: bool) -> None:
    """`e164` becomes text (SQLite: here, in the table's rebuild); the hash is required."""
    if sqlite:
        batch.alter_column("e164", type_=sa.Text(), existing_type=_OLD_E164,
                           existing_nullable=False)
    batch.alter_column("e164_hash", existing_type=_HASH, nullable=False)
