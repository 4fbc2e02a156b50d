"""Harness configuration: who answers which number, what a dialer should conclude, and
clear errors for a broken file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dialer.errors import ConfigError
from dialer.harness.config import PhoneKind, load_harness, parse_harness
from rules.dispositions import Disposition

CONFIG = {
    "phones": {
        "空号": {"kind": "announcement", "text": "您拨打的号码是空号", "announcement": "vacant"},
        "关机": {"kind": "announcement", "text": "您拨打的电话已关机", "status": 480,
               "announcement": "powered_off"},
        "shopper": {"kind": "person", "talk": "4s-8s", "keys": "1"},
    },
    "numbers": {"+8613800138000": "busy", "+86138001381*": "空号",
                "+861380013811*": "关机"},
    "weights": {"shopper": 3, "busy": 1},
}


def test_exact_numbers_win_then_the_longest_prefix_then_weights() -> None:
    harness = parse_harness(CONFIG)
    assert harness.choose("+8613800138000") == "busy"
    assert harness.choose("8613800138000") == "busy"  # digits without the +
    assert harness.choose("+8613800138123") == "空号"
    assert harness.choose("+8613800138112") == "关机"
    drawn = Counter(harness.choose(f"+86139{n:08d}") for n in range(4000))
    assert set(drawn) == {"shopper", "busy"}
    assert 0.72 < drawn["shopper"] / 4000 < 0.78
    assert harness.choose("+8613900000001") == harness.choose("+8613900000001")  # stable


def test_each_phone_says_what_a_dialer_should_conclude() -> None:
    harness = parse_harness(CONFIG)
    assert harness.phone("busy").expected() == {Disposition.BUSY}
    assert harness.phone("busy").final_status == 486
    assert harness.phone("关机").expected() == {Disposition.POWERED_OFF}
    assert harness.phone("关机").final_status == 480
    assert harness.phone("空号").final_status == 404
    assert Disposition.COMPLETED in harness.phone("shopper").expected()
    assert harness.phone("ring_forever").kind is PhoneKind.RING_FOREVER
    talk = harness.phone("shopper").talk
    assert talk.draw(0.0) == 4.0
    assert talk.draw(0.5) == 6.0


def test_a_broken_file_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "harness.yaml"
    path.write_text(
        "listen: localhost\n"
        "phones:\n"
        "  a: {kind: announcement}\n"
        "  b: {kind: person, keys: '12x'}\n"
        "  c: {kind: person, status: 486}\n"
        "numbers: {'+861380': nobody}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_harness(path)
    text = str(error.value)
    for expected in ("listen", "announcement needs 'text' or 'file'",
                     "say what the announcement means", "ends no call with a failure status",
                     "DTMF"):
        assert expected in text, text
    assert "harness.yaml:1" in text
    path.write_text("numbers: {'+861380': nobody}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no phone named 'nobody'"):
        load_harness(path)
