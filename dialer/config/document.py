"""YAML text as plain data, remembering where every key and value starts.

The dialect is YAML 1.1 as PyYAML's SafeLoader reads it, except that only `true`/`false`
are booleans (so `NO` stays Norway and `no` an intent) and `14:00` is a string, not the
sexagesimal integer 840. Duplicate keys, tags other than the plain ones, recursive
aliases and absurdly large documents are refused; `<<` merges work.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, cast

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dialer.config.fields import KeyPath, format_path
from dialer.errors import ConfigError

_MAX_NODES: Final = 100_000
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_PLAIN_TAGS: Final = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's booleans and numbers (no yes/no/on/off, no base 60)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if not tag.endswith(("bool", "int", "float"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9_]*)|0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column in a file."""

    line: int
    column: int


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class YamlDocument:
    """Parsed YAML as plain data, with where each value and each mapping key starts."""

    data: dict[object, object]
    values: Mapping[KeyPath, Position]
    keys: Mapping[KeyPath, Position]


# --- reading -------------------------------------------------------------------------


def read_config_text(path: Path) -> str:
    """The text of a config file: UTF-8 (a BOM is dropped) or else GB18030."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ConfigError(f"{path}: not text in a supported encoding (UTF-8 or GB18030)")


def parse_yaml(text: str, source_name: str) -> YamlDocument:
    """Parse one YAML document whose top level is a mapping, keeping positions."""
    try:
        loader = _Loader(text)  # refuses characters YAML does not allow, already here
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source_name}: not valid YAML: {exc}") from exc
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(f"{source_name}: the file is empty; expected a mapping of settings")
        if not isinstance(node, MappingNode):
            where = _where(source_name, node)
            raise ConfigError(f"{where}: expected a mapping of settings at the top of the file")
        builder = _Builder(loader, source_name)
        data = builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_syntax_problem(source_name, exc)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source_name}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if builder.problems:
        raise ConfigError("\n".join(builder.problems))
    return YamlDocument(
        data=cast(dict[object, object], data), values=builder.values, keys=builder.keys
    )


class _Builder:
    """Turns composed YAML nodes into dicts, lists and scalars, recording positions."""

    def __init__(self, loader: _Loader, source_name: str) -> None:
        self.loader = loader
        self.source_name = source_name
        self.values: dict[KeyPath, Position] = {}
        self.keys: dict[KeyPath, Position] = {}
        self.problems: list[str] = []
        self._open: set[int] = set()
        self._count = 0

    def build(self, node: Node, path: KeyPath) -> object:
        self._count += 1
        if self._count > _MAX_NODES:
            raise ConfigError(f"{self.source_name}: more than {_MAX_NODES} values; too large")
        if id(node) in self._open:
            raise ConfigError(f"{_where(self.source_name, node)}: an alias refers to itself")
        self.values[path] = _position(node)
        if not isinstance(node, ScalarNode) and node.tag not in _PLAIN_TAGS:
            where = _where(self.source_name, node)
            raise ConfigError(f"{where}: YAML tag {node.tag!r} is not supported here")
        if isinstance(node, ScalarNode):
            return self.loader.construct_object(node, deep=True)
        self._open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            return self._build_mapping(cast(MappingNode, node), path)
        finally:
            self._open.discard(id(node))

    def _build_mapping(self, node: MappingNode, path: KeyPath) -> dict[object, object]:
        own = {id(key) for key, _ in node.value if key.tag != _MERGE_TAG}
        self.loader.flatten_mapping(node)  # `<<: *defaults` merges; own keys override
        result: dict[object, object] = {}
        key_nodes: dict[object, Node] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                where = _where(self.source_name, key_node)
                self.problems.append(f"{where}: mapping keys must be plain words or numbers")
                continue
            if key in key_nodes and id(key_nodes[key]) in own:
                first = _position(key_nodes[key]).line
                where = _where(self.source_name, key_node)
                key_path = format_path((*path, _key_part(key)))
                self.problems.append(f"{where}: {key_path}: duplicate key (first on line {first})")
            key_nodes[key] = key_node
            self.keys[(*path, _key_part(key))] = _position(key_node)
            result[key] = self.build(value_node, (*path, _key_part(key)))
        return result


def _key_part(key: object) -> str:
    return str(key).lower() if isinstance(key, bool) else str(key)


def _position(node: Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _where(source_name: str, node: Node) -> str:
    position = _position(node)
    return f"{source_name}:{position.line}:{position.column}"


def _syntax_problem(source_name: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{source_name}:{mark.line + 1}:{mark.column + 1}" if mark else source_name
    context = f" ({exc.context})" if exc.context else ""
    return f"{where}: YAML syntax error: {exc.problem}{context}"
