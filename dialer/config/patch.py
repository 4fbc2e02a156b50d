"""Apply proposed changes (`rules.tuning_hours.Change`) to a campaign file in place.

The file is edited round-trip (ruamel.yaml): comments, key order, quoting and the
file's own indentation are kept; a new key goes after the key it belongs with
(`calling_hours` after `compliance`, `retired_scripts` after `script`, `stopped_sources`
after `leads`), or at the end. The edited text is validated as a campaign before it
replaces the file, a copy of the original is kept as `<file>.bak`, and the file is
replaced atomically, so a failed apply leaves the campaign as it was.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from dialer.config.campaign import Campaign
from dialer.config.loader import load_yaml_text
from dialer.errors import ConfigError, UsageError
from rules.tuning_hours import Change

_NEIGHBOUR: Final = {"calling_hours": "compliance", "retired_scripts": "script",
                     "stopped_sources": "leads"}
# (mapping, sequence, offset) indentations to try, the project's own style first
_INDENTS: Final = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 4, 0), (4, 6, 4), (2, 4, 0))


def apply_changes(path: Path, changes: Sequence[Change]) -> Path:
    """Write `changes` into the campaign file at `path`; returns the backup's path.

    Raises ConfigError when the file is not a YAML mapping or the result would not be a
    valid campaign, UsageError for a change this function does not know.
    """
    text = path.read_text(encoding="utf-8")
    yaml = _yaml_like(text, str(path))
    data = yaml.load(text)
    if not isinstance(data, CommentedMap):
        raise ConfigError(f"{path}: expected a mapping of campaign settings")
    for change in changes:
        _apply(data, change)
    edited = _dump(yaml, data)
    load_yaml_text(edited, Campaign, str(path), base_dir=path.parent)  # raises ConfigError
    backup = path.with_name(path.name + ".bak")
    shutil.copy2(path, backup)
    temporary = path.with_name(f".{path.name}.tune")
    temporary.write_text(edited, encoding="utf-8")
    os.replace(temporary, path)
    return backup


def _yaml_like(text: str, source: str) -> YAML:
    """A round-trip YAML that writes `text` back as it is, indentation included."""
    for mapping, sequence, offset in _INDENTS:
        yaml = _round_trip(mapping, sequence, offset)
        try:
            if _dump(yaml, yaml.load(text)) == text:
                return yaml
        except YAMLError as exc:
            raise ConfigError(f"{source}: not readable as YAML: {exc}") from exc
    return _round_trip(*_INDENTS[0])  # an unusual layout: re-indented in our style


def _round_trip(mapping: int, sequence: int, offset: int) -> YAML:
    yaml = YAML()  # round-trip mode
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    yaml.width = 4096  # never re-wrap long lines
    yaml.preserve_quotes = True
    return yaml


def _dump(yaml: YAML, data: object) -> str:
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()


def _apply(data: CommentedMap, change: Change) -> None:
    if change.op == "set" and not isinstance(change.value, tuple):
        hours = CommentedMap()
        for key, ranges in change.value.items():
            hours[key] = _flow([DoubleQuotedScalarString(text) for text in ranges])
        _put(data, change.field, hours)
    elif change.op == "add" and isinstance(change.value, tuple):
        existing = data.get(change.field)
        if existing is None:
            _put(data, change.field, _flow(list(change.value)))
        elif isinstance(existing, list):
            existing.extend(name for name in change.value if name not in existing)
        else:
            raise ConfigError(f"{change.field} in the campaign file is not a list")
    else:
        raise UsageError(f"cannot apply {change.op!r} of {change.field!r}")


def _put(data: CommentedMap, key: str, value: object) -> None:
    if key in data:
        data[key] = value
        return
    neighbour = _NEIGHBOUR.get(key)
    keys = list(data)
    position = keys.index(neighbour) + 1 if neighbour in keys else len(keys)
    data.insert(position, key, value)


def _flow(items: list[object]) -> CommentedSeq:
    sequence = CommentedSeq(items)
    sequence.fa.set_flow_style()
    return sequence
