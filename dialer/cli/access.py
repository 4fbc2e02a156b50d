"""`dialer access key-*|user-*`: API keys and user accounts for `dialer serve`."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dialer.cli.common import DbOption, JsonOption, actor, stderr, stdout, store_at
from dialer.clock import SystemClock
from dialer.errors import UsageError
from dialer.serve.access import (
    MIN_PASSWORD_LENGTH,
    Role,
    create_api_key,
    create_user,
    disable_user,
    list_api_keys,
    list_users,
    revoke_api_key,
    set_password,
)

app = typer.Typer(help="API keys and user accounts for `dialer serve`.", no_args_is_help=True)

RoleOption = Annotated[Role, typer.Option("--role", help="What the key or user may do.")]
UsernameArg = Annotated[str, typer.Argument(help="The user's login name.")]
ByOption = Annotated[str | None, typer.Option("--by", help="Who, for the audit log.")]
PasswordStdinOption = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of stdin instead of "
    "prompting for it.")]


@app.command("key-create")
def key_create(
    name: Annotated[str, typer.Option("--name", help="What the key is for (\"crm\", ...).")],
    role: RoleOption,
    db: DbOption = None,
    by: ByOption = None,
) -> None:
    """Create an API key and print it: this is the only time it is shown."""
    with store_at(db) as store, store.write() as uow:
        key = create_api_key(uow, name=name, role=role, actor=actor(by), now=SystemClock().now())
    print(key)  # alone on stdout, so that scripts can capture it
    stderr.print(f"API key {key.split('_')[1]} ({role.value}) created. Store it now: "
                 "it cannot be shown again.")


@app.command("key-list")
def key_list(db: DbOption = None, json_out: JsonOption = False) -> None:
    """List API keys (ids, names and roles; never the secrets)."""
    with store_at(db) as store, store.read() as uow:
        keys = list_api_keys(uow)
    if json_out:
        for key in keys:
            print(json.dumps({"key_id": key.key_id, "name": key.name, "role": key.role.value,
                              "created_at": key.created_at.isoformat(),
                              "created_by": key.created_by,
                              "revoked_at": _iso(key.revoked_at)}, ensure_ascii=False))
        return
    table = Table(title=f"{len(keys)} API key(s)")
    for column in ("key id", "name", "role", "created", "by", "revoked"):
        table.add_column(column)
    for key in keys:
        table.add_row(key.key_id, escape(key.name), key.role.value, _short(key.created_at),
                      escape(key.created_by), _short(key.revoked_at))
    stdout.print(table)


@app.command("key-revoke")
def key_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, as key-list shows it.")],
    db: DbOption = None,
    by: ByOption = None,
) -> None:
    """Revoke an API key: requests carrying it are refused from now on (audited)."""
    with store_at(db) as store, store.write() as uow:
        revoked = revoke_api_key(uow, key_id, actor=actor(by), now=SystemClock().now())
    stdout.print(f"revoked API key {key_id}" if revoked
                 else f"API key {key_id} was already revoked")


@app.command("user-add")
def user_add(
    username: UsernameArg,
    role: RoleOption,
    password_stdin: PasswordStdinOption = False,
    db: DbOption = None,
    by: ByOption = None,
) -> None:
    """Add a user who signs in with a password."""
    password = _password(password_stdin)
    with store_at(db) as store, store.write() as uow:
        create_user(uow, username=username, password=password, role=role, actor=actor(by),
                    now=SystemClock().now())
    stdout.print(f"added user {escape(username)} ({role.value})")


@app.command("user-password")
def user_password(
    username: UsernameArg,
    password_stdin: PasswordStdinOption = False,
    db: DbOption = None,
    by: ByOption = None,
) -> None:
    """Give a user a new password (audited)."""
    password = _password(password_stdin)
    with store_at(db) as store, store.write() as uow:
        set_password(uow, username, password=password, actor=actor(by), now=SystemClock().now())
    stdout.print(f"changed the password of {escape(username)}")


@app.command("user-disable")
def user_disable(username: UsernameArg, db: DbOption = None, by: ByOption = None) -> None:
    """Disable a user: their sign-ins are refused from now on (audited)."""
    with store_at(db) as store, store.write() as uow:
        disabled = disable_user(uow, username, actor=actor(by), now=SystemClock().now())
    name = escape(username)
    stdout.print(f"disabled user {name}" if disabled else f"{name} was already disabled")


@app.command("user-list")
def user_list(db: DbOption = None, json_out: JsonOption = False) -> None:
    """List users (names and roles; never the passwords)."""
    with store_at(db) as store, store.read() as uow:
        people = list_users(uow)
    if json_out:
        for user in people:
            print(json.dumps({"username": user.username, "role": user.role.value,
                              "created_at": user.created_at.isoformat(),
                              "created_by": user.created_by,
                              "disabled_at": _iso(user.disabled_at)}, ensure_ascii=False))
        return
    table = Table(title=f"{len(people)} user(s)")
    for column in ("username", "role", "created", "by", "disabled"):
        table.add_column(column)
    for user in people:
        table.add_row(escape(user.username), user.role.value, _short(user.created_at),
                      escape(user.created_by), _short(user.disabled_at))
    stdout.print(table)


def _password(from_stdin: bool) -> str:
    """The new password: the first line of stdin, or typed twice without echo."""
    if not from_stdin:
        entered: str = typer.prompt(f"Password (at least {MIN_PASSWORD_LENGTH} characters)",
                                    hide_input=True, confirmation_prompt=True)
        return entered
    line = sys.stdin.readline()
    if not line:
        raise UsageError("--password-stdin: stdin is empty")
    return line.removesuffix("\n").removesuffix("\r")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _short(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")
