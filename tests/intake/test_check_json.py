"""`leads check --json` lines are exactly json.dumps of the documented object."""

from __future__ import annotations

import json

import pytest

from dialer.intake.pipeline import RowVerdict
from dialer.intake.service import verdict_json
from rules.phone import NumberParser
from rules.prefilter import Judge, StoreFacts, Verdict, screen


@pytest.mark.parametrize("raw", ["13512345678", "", "N/A", "4001234567", 'a "quoted" \\ 号码',
                                 "+44 20 7946 0958", "10512345678"])
def test_json_line_matches_the_contract(raw: str) -> None:
    screened = screen(3, raw, NumberParser("CN"))
    verdict = Judge().verdict(screened, StoreFacts())
    line = verdict_json(RowVerdict(3, raw, verdict, screened.info, [raw]))
    info = screened.info
    expected = {
        "row": 3,
        "raw": raw,
        "status": "accepted" if verdict is Verdict.ACCEPTED else "rejected",
        "e164": info.e164 if info else None,
        "reason": None if verdict is Verdict.ACCEPTED else verdict.value,
        "type": info.number_type.value if info else None,
        "region": info.region if info else None,
        "timezones": list(info.timezones) if info else [],
        "carrier": (info.carrier or None) if info else None,
    }
    assert json.loads(line) == expected
    assert line == json.dumps(expected, ensure_ascii=False)
