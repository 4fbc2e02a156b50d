"""`dialer keys new|status|reencrypt`: the keys that encrypt numbers and names at rest.

Rotating the data key: `dialer keys new k2` prints a new entry; put it FIRST in
`DIALER_DATA_KEYS` (keep the old entries after it) and restart the dialers, so new values
are written under it; `dialer keys reencrypt` moves every stored value to it; once
`dialer keys status` shows no value under the old id, drop the old entry.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from dialer.cli.common import DbOption, JsonOption, stdout, store_at
from dialer.store.crypto import DATA_KEYS_ENV, HASH_KEY_ENV, DataKeys, new_key_text
from dialer.store.rotation import DEFAULT_BATCH, key_usage, reencrypt

app = typer.Typer(help="Data keys: new keys, which keys hold the data, re-encryption.",
                  no_args_is_help=True)


@app.command("new")
def new(
    key_id: Annotated[str, typer.Argument(help="The new data key's id (letters, digits, "
                                          "'.', '_' or '-').")] = "k1",
    hash_key: Annotated[bool, typer.Option("--hash", help=f"Print a {HASH_KEY_ENV} value "
                                           "instead (for a new database only).")] = False,
) -> None:
    """Print a fresh random key: a `DIALER_DATA_KEYS` entry, or a hash key."""
    key = new_key_text()
    if hash_key:
        print(key)
        return
    DataKeys.parse(f"{key_id}:{key}", new_key_text())  # ConfigError for a bad id
    print(f"{key_id}:{key}")


@app.command("status")
def status(db: DbOption = None, json_out: JsonOption = False) -> None:
    """The configured data keys, and how many stored values each key id encrypts."""
    with store_at(db) as store:
        usage = key_usage(store)
        configured = store.keys.key_ids
    report = {"current": configured[0], "configured": list(configured),
              "stored_values": dict(sorted(usage.items()))}
    if json_out:
        print(json.dumps(report))
        return
    table = Table("key id", "configured", "stored values")
    for key_id in dict.fromkeys([*configured, *sorted(usage)]):
        mark = "current" if key_id == configured[0] else "yes" if key_id in configured else "NO"
        table.add_row(key_id, mark, str(usage.get(key_id, 0)))
    stdout.print(table)
    stale = sorted(set(usage) - {configured[0]})
    if stale:
        stdout.print(f"values under {', '.join(stale)}: run `dialer keys reencrypt` before "
                     f"dropping {'them' if len(stale) > 1 else 'it'} from {DATA_KEYS_ENV}")


@app.command("reencrypt")
def reencrypt_(
    db: DbOption = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Rows per transaction.")]
    = DEFAULT_BATCH,
    json_out: JsonOption = False,
) -> None:
    """Rewrite every stored value under the current data key (safe while dialing)."""
    with store_at(db) as store:
        rewritten = reencrypt(store, batch)
        current = store.keys.current_id
    if json_out:
        print(json.dumps({"current": current, "rewritten": rewritten}))
        return
    stdout.print(f"{sum(rewritten.values())} value(s) rewritten under key {current}")
