"""Call scripts: verbs, labels, intents, keys and placeholders."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from dialer.config import (
    GotoStep,
    HangupStep,
    ListenStep,
    OptOutStep,
    SayStep,
    SetDispositionStep,
    TransferStep,
    load_script,
    parse_script,
    placeholders,
)
from dialer.errors import ConfigError
from rules.dispositions import Disposition


def script_error(folder: Path, text: str) -> str:
    path = folder / "script.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_script(path)
    return str(info.value)


def test_every_verb_and_its_shorthands() -> None:
    script = parse_script(
        {
            "name": "all",
            "language": "en",
            "steps": [
                {"say": "Hello {first_name}", "label": "start"},
                {
                    "listen": {
                        "keywords": {"yes": ["yes", "sure"]},
                        "digits": {1: "yes"},
                        "then": {"yes": "agent"},
                        "no_input": "start",
                    }
                },
                {"transfer": "sales", "label": "agent"},
                {"set_disposition": "transferred"},
                "opt_out",
                {"opt_out": "You will not hear from us again."},
                {"goto": "start"},
                "hangup",
            ],
        }
    )
    say, listen, transfer, disposition, opt_out, opt_out_say, goto, hangup = script.steps
    assert isinstance(say, SayStep)
    assert say.label == "start"
    assert isinstance(listen, ListenStep)
    assert listen.listen.timeout == timedelta(seconds=5)
    assert dict(listen.listen.digits) == {"1": "yes"}
    assert isinstance(transfer, TransferStep)
    assert transfer.transfer.queue == "sales"
    assert isinstance(disposition, SetDispositionStep)
    assert disposition.set_disposition is Disposition.TRANSFERRED
    assert isinstance(opt_out, OptOutStep)
    assert opt_out.opt_out.say is None
    assert isinstance(opt_out_say, OptOutStep)
    assert opt_out_say.opt_out.say
    assert isinstance(goto, GotoStep)
    assert isinstance(hangup, HangupStep)
    assert placeholders(say.say) == ("first_name",)


def test_undefined_labels_point_at_the_referring_key(tmp_path: Path) -> None:
    message = script_error(
        tmp_path,
        """\
        name: s
        language: en
        steps:
          - say: hi
            label: greet
          - listen:
              keywords: {yes: ["yes"], no: ["no"]}
              then: {yes: gret, no: bye}
              no_match: nowhere
          - goto: greeting
          - hangup
            # a label used twice
          - say: again
            label: greet
        """,
    )
    assert message.splitlines() == [
        f"{tmp_path}/script.yaml:8:19: steps[1].listen.then.yes: no step has label 'gret';"
        " did you mean 'greet'?",
        f"{tmp_path}/script.yaml:8:29: steps[1].listen.then.no: no step has label 'bye'",
        f"{tmp_path}/script.yaml:9:17: steps[1].listen.no_match: no step has label 'nowhere'",
        f"{tmp_path}/script.yaml:10:11: steps[2].goto: no step has label 'greeting';"
        " did you mean 'greet'?",
        f"{tmp_path}/script.yaml:14:12: steps[4].label: label 'greet' is already used by steps[0]",
    ]


def test_steps_need_exactly_one_known_verb(tmp_path: Path) -> None:
    message = script_error(
        tmp_path,
        """\
        name: s
        language: en
        steps:
          - sya: hi
          - say: hi
            goto: end
          - 42
          - say: hi
            lable: x
          - hangup: now
        """,
    )
    lines = message.splitlines()
    assert "script.yaml:4:5: steps[0]: a step needs one verb" in lines[0]
    assert "got 'sya' (did you mean 'say'?)" in lines[0]
    assert "script.yaml:5:5: steps[1]: a step has exactly one verb, got say and goto" in lines[1]
    assert "script.yaml:7:5: steps[2]: expected a step" in lines[2]
    assert "script.yaml:9:5: steps[3].lable: unknown key 'lable'; did you mean 'label'?" in lines[3]
    assert "script.yaml:10:13: steps[4].hangup: 'hangup' takes no settings" in lines[4]


def test_digits_intents_and_placeholders(tmp_path: Path) -> None:
    message = script_error(
        tmp_path,
        """\
        name: s
        language: en
        steps:
          - say: "Hello {name!r} {"
          - menu:
              prompt: "Press 1 for {0}"
              digits: {1: yes, "1a": no}
          - menu:
              prompt: "Press 1"
              digits: {1: yes}
              then: {maybe: end}
            label: end
          - listen: {timeout: 3s}
        """,
    )
    lines = message.splitlines()
    assert "script.yaml:4:10: steps[0].say: unbalanced braces" in lines[0]
    assert (
        "script.yaml:6:15: steps[1].menu.prompt: placeholder {0} must be a plain name" in lines[1]
    )
    assert "script.yaml:7:24: steps[1].menu.digits.1a: expected keys of the phone pad" in lines[2]
    assert "script.yaml:11:14: steps[2].menu.then.maybe: intent 'maybe' is in neither" in lines[3]
    assert "script.yaml:13:13: steps[3].listen: give 'keywords' or 'digits'" in lines[4]


def test_unknown_disposition_and_language(tmp_path: Path) -> None:
    message = script_error(
        tmp_path,
        """\
        name: s
        language: English
        steps:
          - set_disposition: complete
        """,
    )
    assert "script.yaml:2:11: language: expected a language tag" in message
    assert "steps[0].set_disposition: expected one of 'answered_human'" in message
    assert "did you mean 'completed'?" in message
