"""Validating config YAML, and saying precisely what is wrong and where.

A file is read as UTF-8 (with or without a BOM) or else GB18030, parsed into plain data
with positions (`dialer.config.document`), and validated by pydantic into the schema's
frozen dataclasses. Every pydantic error becomes one line of the `ConfigError`:

    campaign.yaml:12:9: dial.mode: expected one of 'preview', ..., got 'predictiv'

A missing key points at the mapping that lacks it, an unknown key at the key itself (with
a "did you mean" when a known key is close). Values under keys that hold secrets are shown
as '***' and phone numbers are masked. Nothing is returned unless the whole file is valid.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar, cast

from pydantic import Tag, TypeAdapter, ValidationError, ValidationInfo

from dialer.config.document import Position, YamlDocument, parse_yaml, read_config_text
from dialer.config.fields import KEY, KeyPath, Problem, format_path, show_value
from dialer.errors import ConfigError

T = TypeVar("T")

_SECRET_KEYS: Final = ("password", "secret", "token")


# --- validating ----------------------------------------------------------------------

_ADAPTERS: dict[object, TypeAdapter[Any]] = {}


def _adapter(model_type: type[T]) -> TypeAdapter[T]:
    if model_type not in _ADAPTERS:
        _ADAPTERS[model_type] = TypeAdapter(model_type)
    return cast(TypeAdapter[T], _ADAPTERS[model_type])


def load_yaml(path: str | os.PathLike[str], model_type: type[T]) -> T:
    """Load and validate one YAML file; relative paths inside resolve against its folder."""
    path = Path(path)
    text = read_config_text(path)
    return load_yaml_text(text, model_type, str(path), base_dir=path.parent)


def load_yaml_text(
    text: str, model_type: type[T], source_name: str, *, base_dir: Path | None = None
) -> T:
    """Validate YAML text (from an upload, say); without `base_dir` no file may be referenced."""
    document = parse_yaml(text.removeprefix("\ufeff"), source_name)
    return parse_data(document.data, model_type, source_name, base_dir=base_dir, document=document)


def parse_data(
    data: object,
    model_type: type[T],
    source_name: str,
    *,
    base_dir: Path | None = None,
    document: YamlDocument | None = None,
) -> T:
    """Validate already-parsed data; `document` supplies line numbers when there is one."""
    try:
        return _adapter(model_type).validate_python(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        lines = _describe_errors(exc, model_type, source_name, document)
        raise ConfigError("\n".join(lines)) from None


def base_dir_of(info: ValidationInfo) -> Path | None:
    """The folder that relative paths in the data being validated resolve against."""
    context = info.context
    return cast(Path | None, context.get("base_dir")) if isinstance(context, dict) else None


# --- describing errors ---------------------------------------------------------------


def _describe_errors(
    exc: ValidationError, model_type: type[Any], source_name: str, document: YamlDocument | None
) -> list[str]:
    found: list[tuple[Position | None, str]] = []
    errors = exc.errors(include_url=False)
    # pydantic counts only the valid items of a list against its minimum length: drop that
    # "too short" when the real problem is an invalid item.
    inner = {tuple(error["loc"][:n]) for error in errors for n in range(len(error["loc"]))}
    for error in errors:
        if error["type"] == "too_short" and tuple(error["loc"]) in inner:
            continue
        for path, message, anchor in _explain(error, model_type):
            position = _locate(document, path, anchor)
            where = source_name
            if position is not None:
                where += f":{position.line}:{position.column}"
            key_path = format_path(path)
            found.append((position, f"{where}: {key_path + ': ' if key_path else ''}{message}"))
    found.sort(key=lambda item: (item[0].line, item[0].column) if item[0] else (0, 0))
    return [line for _, line in found]


def _explain(error: Any, model_type: type[Any]) -> list[tuple[KeyPath, str, str]]:
    """(key path, message, anchor) for one pydantic error; anchor is value, key or parent."""
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    about_key = bool(loc) and loc[-1] == KEY
    raw_loc = loc[:-1] if about_key else loc
    path = tuple(part for part in raw_loc if not _is_tag(part))
    if kind == "config_problems":
        problems = cast(Sequence[Problem], ctx["problems"])
        return [
            ((*path, *sub[:-1]), message, "key")
            if sub[-1:] == (KEY,)
            else ((*path, *sub), message, "value")
            for sub, message in problems
        ]
    if kind == "missing":
        return [(path, "field required", "parent")]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        known = _field_names_at(model_type, raw_loc[:-1])
        return [(path, _unknown_key(str(path[-1]), known), "key")]
    shown = _masked(path, error.get("input"))
    message = _message(kind, error, ctx, shown)
    if "shown" in ctx and shown != show_value(error.get("input")):  # masked: mask ours too
        message = message.replace(str(ctx["shown"]), shown)
    return [(path, message, "key" if about_key else "value")]


def _unknown_key(key: str, known: Sequence[str]) -> str:
    if key.lower() in _SECRET_KEYS and f"{key.lower()}_env" in known:
        return (
            f"secrets are never kept in config files; put the {key} in an environment variable"
            f" and give its name as '{key.lower()}_env'"
        )
    message = f"unknown key {key!r}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"{message}; did you mean {close[0]!r}?"
    return f"{message}; expected one of {', '.join(map(repr, known))}" if known else message


_EXPECTED: Final = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "mapping_type": "a mapping",
    "dataclass_type": "a mapping",
    "dataclass_args_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
    "greater_than": "a value greater than {gt}",
    "greater_than_equal": "a value of at least {ge}",
    "less_than": "a value less than {lt}",
    "less_than_equal": "a value of at most {le}",
    "too_short": "at least {min_length} item(s)",
    "string_too_short": "a non-empty string",
}


def _message(kind: str, error: Any, ctx: dict[str, Any], shown: str) -> str:
    if kind in ("enum", "literal_error"):
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        if not choices:
            return f"expected {ctx.get('expected')}, got {shown}"
        text = f"expected one of {', '.join(map(repr, choices))}, got {shown}"
        close = difflib.get_close_matches(str(error.get("input")), choices, n=1)
        return f"{text}; did you mean {close[0]!r}?" if close and shown != "'***'" else text
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind].format(**ctx)}, got {shown}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    message = str(error["msg"])
    return message[:1].lower() + message[1:]


def _masked(path: KeyPath, value: object) -> str:
    names = [part.lower() for part in path if isinstance(part, str)]
    if any(secret in name for name in names for secret in _SECRET_KEYS):
        return "'***'"
    if names and names[-1] == "number" and isinstance(value, str | int):
        text = str(value)
        return repr(text[:3] + "*" * (len(text) - 5) + text[-2:]) if len(text) > 5 else "'***'"
    return show_value(value)


def _locate(document: YamlDocument | None, path: KeyPath, anchor: str) -> Position | None:
    if document is None:
        return None
    # Positions are keyed by mapping keys as text; pydantic may report an int key as int.
    path = tuple(
        str(part) if isinstance(part, int) and _is_mapping_key(document, path, i) else part
        for i, part in enumerate(path)
    )
    if anchor == "key" and path in document.keys:
        return document.keys[path]
    if anchor == "parent":
        path = path[:-1]
    while path not in document.values and path:
        path = path[:-1]
    return document.values.get(path)


def _is_mapping_key(document: YamlDocument, path: KeyPath, index: int) -> bool:
    return (*path[:index], str(path[index])) in document.values


# --- walking the schema types, to list the keys known at a place ---------------------


def _is_tag(part: object) -> bool:
    return isinstance(part, str) and part.startswith("<") and part.endswith(">")


def _field_names_at(model_type: object, loc: KeyPath) -> list[str]:
    current: object = model_type
    for part in loc:
        current = _child_type(current, part)
        if current is None:
            return []
    return _field_names(current)


def _members(tp: object) -> list[object]:
    """The types a value of `tp` may be: Annotated and Optional unwrapped, unions split."""
    if typing.get_origin(tp) is Annotated:
        return _members(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(tp) for m in _members(arg) if m is not type(None)]
    return [tp]


def _child_type(tp: object, part: str | int) -> object | None:
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and _is_tag(part):
        for member in typing.get_args(tp):
            if any(isinstance(meta, Tag) and meta.tag == part for meta in _metadata(member)):
                return cast(object, member)
    for member in _members(tp):
        origin = typing.get_origin(member)
        args: tuple[object, ...] = typing.get_args(member)
        if isinstance(member, type) and dataclasses.is_dataclass(member) and isinstance(part, str):
            hints: dict[str, object] = typing.get_type_hints(member, include_extras=True)
            if part in hints:
                return hints[part]
        elif origin in (tuple, list, frozenset) and isinstance(part, int) and args:
            return args[0]
        elif isinstance(origin, type) and issubclass(origin, Mapping) and len(args) == 2:
            return args[1]
    if typing.get_origin(tp) is Annotated:
        inner: object = typing.get_args(tp)[0]
        return _child_type(inner, part)
    return None


def _metadata(tp: object) -> tuple[object, ...]:
    return tuple(getattr(tp, "__metadata__", ()))


def _field_names(tp: object) -> list[str]:
    names: list[str] = []
    for member in _members(tp):
        if isinstance(member, type) and dataclasses.is_dataclass(member):
            names += [f.name for f in dataclasses.fields(member) if f.name not in names]
    return names
