"""Key checks and key rotation for the encrypted columns (`schema.ENCRYPTED`).

- `unknown_fingerprints` / `remember_fingerprints`: the database keeps a one-way
  fingerprint of the hash key and of each data key id it has seen (`key_fingerprints`).
  Opening it with another hash key, or with another key under a known id, is a
  ConfigError: with the wrong hash key every lookup would miss, and a suppressed number
  would look callable.
- `reencrypt`: rewrites every value not under the current data key, in batches of
  short transactions, while dialers keep running (a value changed meanwhile is left to
  its writer, which used the current key). Idempotent: a second run rewrites nothing.
- `key_usage`: how many stored values each data key id holds, to know when an old key
  can be dropped from `DIALER_DATA_KEYS`.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, Table, bindparam, inspect, select, update

from dialer.errors import ConfigError
from dialer.store.crypto import DATA_KEYS_ENV, HASH_KEY_ENV, DataKeys, key_id_of
from dialer.store.schema import ENCRYPTED, key_fingerprints, metadata
from dialer.store.unit_of_work import _dialect_insert

if TYPE_CHECKING:
    from dialer.store.store import Store

DEFAULT_BATCH = 1000


def unknown_fingerprints(conn: Connection, keys: DataKeys, where: str) -> dict[str, str]:
    """The fingerprints of `keys` the database does not know yet; ConfigError if one it
    knows differs. Nothing to check before the table exists (an unmigrated database)."""
    if not inspect(conn).has_table(key_fingerprints.name):
        return {}
    stmt = select(key_fingerprints.c.name, key_fingerprints.c.fingerprint)
    known: dict[str, str] = {row.name: row.fingerprint for row in conn.execute(stmt)}
    for name, fingerprint in keys.fingerprints().items():
        if name in known and known[name] != fingerprint:
            raise _mismatch(name, where)
    return {name: value for name, value in keys.fingerprints().items() if name not in known}


def remember_fingerprints(conn: Connection, keys: DataKeys, where: str) -> None:
    """Store the fingerprints of new keys; checked again afterwards, since a worker
    starting at the same time may have stored another key under the same new id."""
    missing = unknown_fingerprints(conn, keys, where)
    if missing:
        stmt = _dialect_insert(conn.dialect.name, key_fingerprints)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["name"]),
                     [{"name": name, "fingerprint": value} for name, value in missing.items()])
        unknown_fingerprints(conn, keys, where)


def _mismatch(name: str, where: str) -> ConfigError:
    if name == "hash":
        return ConfigError(f"{HASH_KEY_ENV} (or the key file's hash_key) is not the hash key "
                           f"{where} was written with: every lookup would miss. Give it the "
                           f"original hash key")
    key_id = name.removeprefix("data:")
    return ConfigError(f"data key {key_id!r} in {DATA_KEYS_ENV} (or the key file) is not the "
                       f"key {where} knows by that id: a new key needs a new id")


def reencrypt(store: Store, batch: int = DEFAULT_BATCH) -> dict[str, int]:
    """Rewrite every encrypted value under the store's current data key, `batch` rows
    per transaction; returns how many values were rewritten, by `table.column`."""
    if batch <= 0:
        raise ValueError("batch must be positive")
    rewritten: Counter[str] = Counter()
    for name, columns in ENCRYPTED.items():
        table = metadata.tables[name]
        after: object = None
        while True:
            with store.write() as uow:
                after, done = _reencrypt_batch(uow._conn, uow._keys, table, columns,
                                               after, batch)
            rewritten.update(done)
            if after is None:
                break
    return {f"{name}.{column}": rewritten[f"{name}.{column}"]
            for name, columns in ENCRYPTED.items() for column in columns}


def _reencrypt_batch(conn: Connection, keys: DataKeys, table: Table,
                     columns: tuple[str, ...], after: object,
                     batch: int) -> tuple[object, Counter[str]]:
    """One batch of rows after primary key `after`: (the last key, or None when the
    table is done; values rewritten by column)."""
    key = _primary_key(table)
    stmt = select(key, *(table.c[name] for name in columns)).order_by(key).limit(batch)
    if after is not None:
        stmt = stmt.where(key > after)
    rows = conn.execute(stmt).all()
    done: Counter[str] = Counter()
    changes: list[dict[str, Any]] = []
    for row in rows:
        change: dict[str, Any] = {"key_": row[0]}
        for index, name in enumerate(columns, start=1):
            label = f"{table.name}.{name}"
            stored = row[index]
            change[f"old_{name}"] = change[f"new_{name}"] = stored
            if key_id_of(label, stored) != keys.current_id:
                change[f"new_{name}"] = keys.encrypt(label, keys.decrypt(label, stored))
                done[label] += 1
        if any(change[f"old_{n}"] != change[f"new_{n}"] for n in columns):
            changes.append(change)
    if changes:
        # Only where the row still holds what was read: a concurrent writer wins.
        conn.execute(
            update(table)
            .where(key == bindparam("key_"),
                   *(table.c[name] == bindparam(f"old_{name}") for name in columns))
            .values({name: bindparam(f"new_{name}") for name in columns}),
            changes)
    return (rows[-1][0] if len(rows) == batch else None), done


def _primary_key(table: Table) -> Column[Any]:
    (key,) = table.primary_key.columns
    return key


def key_usage(store: Store) -> dict[str, int]:
    """How many stored values each data key id encrypts (all encrypted columns)."""
    usage: Counter[str] = Counter()
    with store.read() as uow:
        for name, columns in ENCRYPTED.items():
            table = metadata.tables[name]
            for column in columns:
                label = f"{name}.{column}"
                values = uow._conn.execution_options(yield_per=5000).execute(
                    select(table.c[column])).scalars()
                usage.update(key_id_of(label, value) for value in values)
    return dict(usage)
