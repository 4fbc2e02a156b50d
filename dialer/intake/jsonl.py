"""The `leads check --json` line: one object per data row (a public contract).

Fields, in this order: row, raw, status, e164, reason, type, region, timezones, carrier.
A line is rendered in two steps so that the expensive part can run in worker processes
before the row's final verdict is known: `parts` renders everything but status and
reason; `join` completes the line once the verdict is decided. The result is exactly
`json.dumps(obj, ensure_ascii=False)` of the documented object.
"""

from __future__ import annotations

import functools
import json

from rules.phone import NumberType, PhoneInfo
from rules.prefilter import Verdict

Parts = tuple[str, str, str]  # before status, between status and reason, after reason

_NO_INFO_TAIL = ', "type": null, "region": null, "timezones": [], "carrier": null}'


def parts(row: int, raw: str, info: PhoneInfo | None) -> Parts:
    """The line for `row` without its status and reason."""
    head = f'{{"row": {row}, "raw": {_json_string(raw)}, "status": '
    if info is None:
        return head, ', "e164": null, "reason": ', _NO_INFO_TAIL
    tail = _info_tail(info.number_type, info.region, info.carrier, info.timezones)
    return head, f', "e164": "{info.e164}", "reason": ', tail


def join(line: Parts, verdict: Verdict) -> str:
    """The complete line, given the row's final verdict."""
    head, middle, tail = line
    if verdict is Verdict.ACCEPTED:
        return f'{head}"accepted"{middle}null{tail}'
    return f'{head}"rejected"{middle}"{verdict.value}"{tail}'


def _json_string(text: str) -> str:
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'  # what json.dumps writes, without its overhead
    return json.dumps(text, ensure_ascii=False)


@functools.lru_cache(maxsize=4096)
def _info_tail(kind: NumberType, region: str | None, carrier: str, zones: tuple[str, ...]) -> str:
    fields = json.dumps(
        {"type": kind.value, "region": region, "timezones": list(zones),
         "carrier": carrier or None},
        ensure_ascii=False,
    )
    return ", " + fields[1:]
