"""The script runner, driven by hand: what it says and asks for at each turn."""

from __future__ import annotations

from typing import Any

import pytest

from dialer.config.script import parse_script
from dialer.talk.runner import (
    Act,
    HangUp,
    Phase,
    PlayFile,
    ScriptRunner,
    Speak,
    StopSpeaking,
    script_phrases,
)

CART: dict[str, Any] = {
    "name": "cart",
    "language": "en",
    "opt_out_key": "9",
    "steps": [
        {"say": "Hello {name}, your {item} is waiting.", "label": "greet"},
        {"menu": {"prompt": "Want an agent? Say yes or press 1.",
                  "keywords": {"yes": ["yes", "sure"], "no": ["no"]},
                  "digits": {"1": "yes", "2": "no", "55": "no"},
                  "timeout": "4s", "then": {"yes": "transfer", "no": "bye"},
                  "no_input": "bye", "no_match": "again"}, "label": "ask"},
        {"transfer": {"queue": "service", "say": "Connecting you."}, "label": "transfer"},
        {"say": "Nobody is free, we will call you back.", "label": "nobody"},
        "hangup",
        {"say": "Sorry?", "label": "again"},
        {"goto": "ask"},
        {"say": "Goodbye.", "label": "bye"},
        {"set_disposition": "completed"},
        "hangup",
        {"opt_out": "You will not be called again.", "label": "out"},
        "hangup",
    ],
}


def runner(data: dict[str, Any] = CART, **kwargs: Any) -> ScriptRunner:
    script = parse_script(data)
    return ScriptRunner(script, {"name": "Ann", "item": "kettle"}, **kwargs)


def test_a_yes_to_the_menu_asks_for_an_agent_after_the_transfer_text() -> None:
    run = runner()
    assert run.start(0.0) == [Speak("Hello Ann, your kettle is waiting.")]
    assert run.played(3.0) == [Speak("Want an agent? Say yes or press 1.")]
    assert run.played(5.0) == []
    assert run.phase is Phase.LISTENING
    assert run.speech_started(6.0) == []
    assert run.heard("sure", 7.0) == [Speak("Connecting you.")]
    assert run.played(8.0) == [Act("agent")]
    assert run.bridged(9.0) == []
    assert run.tick(100.0) == []
    assert run.phase is Phase.DONE


def test_no_bridge_in_time_goes_on_to_the_call_back_promise() -> None:
    run = runner(transfer_wait_s=10.0)
    run.start(0.0)
    run.played(1.0)
    run.digit("1", 1.5)  # over the prompt: it stops
    assert run.phase is Phase.SPEAKING  # "Connecting you."
    assert run.played(2.0) == [Act("agent")]
    assert run.tick(11.9) == []
    assert run.tick(12.0) == [Speak("Nobody is free, we will call you back.")]
    assert run.played(14.0) == [HangUp()]  # the transfer attempt was its disposition


def test_an_answer_over_the_menu_prompt_stops_it() -> None:
    run = runner()
    run.start(0.0)
    run.played(1.0)
    assert run.heard("no", 1.5) == [StopSpeaking(), Speak("Goodbye.")]
    assert run.played(2.0) == [Act("completed"), HangUp()]


def test_silence_after_the_menu_is_no_input() -> None:
    run = runner()
    run.start(0.0)
    run.played(1.0)
    run.played(2.0)
    assert run.tick(5.9) == []
    assert run.tick(6.0) == [Speak("Goodbye.")]


def test_the_timeout_waits_while_the_callee_is_talking() -> None:
    run = runner()
    run.start(0.0)
    run.played(1.0)
    run.played(2.0)
    run.speech_started(5.5)
    assert run.tick(7.0) == []  # still waiting for what they said
    assert run.heard(None, 7.5) == [Speak("Sorry?")]  # heard, nothing matched
    assert run.played(8.0) == [Speak("Want an agent? Say yes or press 1.")]  # asked again


def test_multi_key_answers_wait_for_the_next_key() -> None:
    run = runner()
    run.start(0.0)
    run.played(1.0)
    run.played(2.0)
    assert run.digit("5", 2.5) == []
    assert run.digit("5", 3.0) == [Speak("Goodbye.")]
    run = runner()
    run.start(0.0)
    run.played(1.0)
    run.played(2.0)
    assert run.digit("7", 2.5) == [Speak("Sorry?")]


def test_stop_at_any_time_opts_out_at_once_and_confirms() -> None:
    run = runner()
    run.start(0.0)
    assert run.heard("stop", 1.0) == [StopSpeaking(), Act("opt_out"),
                                      Speak("You will not be called again.")]
    assert run.played(3.0) == [HangUp()]
    assert run.opted_out


def test_the_opt_out_key_opts_out_while_listening() -> None:
    run = runner()
    run.start(0.0)
    run.played(1.0)
    run.played(2.0)
    assert run.digit("9", 2.5) == [Act("opt_out"), Speak("You will not be called again.")]


def test_a_script_without_an_opt_out_step_hangs_up_on_stop() -> None:
    data = {"name": "short", "language": "zh", "steps": [{"say": "您好"}, {"play": "x.wav"}]}
    run = runner(data)
    assert run.start(0.0) == [Speak("您好")]
    assert run.played(1.0) == [PlayFile("x.wav")]
    assert run.heard("退订", 1.5) == [StopSpeaking(), Act("opt_out"), HangUp()]
    assert run.heard("退订", 2.0) == []


def test_an_interrupted_prompt_hears_the_callee_out_then_goes_on() -> None:
    run = runner()
    run.start(0.0)
    assert run.interrupted(0.5) == []
    assert run.phase is Phase.HEARING_OUT
    assert run.heard("yes", 1.5) == [Speak("Hello Ann, your kettle is waiting.")]  # again
    assert run.interrupted(2.0) == []
    assert run.heard(None, 3.0) == [Speak("Want an agent? Say yes or press 1.")]  # on
    run = runner()
    run.start(0.0)
    run.interrupted(0.5)
    assert run.tick(5.4) == []  # still talking
    assert run.heard(None, 6.0) == [Speak("Hello Ann, your kettle is waiting.")]


def test_an_interrupted_menu_prompt_listens() -> None:
    run = runner()
    run.start(0.0)
    run.played(1.0)
    assert run.interrupted(1.2) == []
    assert run.phase is Phase.LISTENING
    assert run.heard("yes", 2.0) == [Speak("Connecting you.")]


def test_a_phrase_means_the_question_asked_now() -> None:
    run = runner()
    assert script_phrases(run.script) == {
        "opt_out": ("stop", "stop calling", "unsubscribe", "do not call", "don't call me"),
        "yes": ("yes", "sure"), "no": ("no",)}
    run.start(0.0)
    assert run.intent_of("yes") is None  # no question yet
    assert run.heard("yes", 0.5) == []  # a remark over the greeting: it plays on


def test_a_script_that_runs_off_its_end_is_completed() -> None:
    data = {"name": "note", "language": "en", "steps": [{"say": "Your parcel comes today."}]}
    run = runner(data)
    run.start(0.0)
    assert run.played(2.0) == [Act("completed"), HangUp()]
    assert run.played(3.0) == []


def test_a_goto_loop_hangs_up_instead_of_spinning() -> None:
    data = {"name": "loop", "language": "en",
            "steps": [{"goto": "b", "label": "a"}, {"goto": "a", "label": "b"}]}
    assert runner(data).start(0.0) == [Act("completed"), HangUp()]


def test_a_missing_placeholder_is_said_as_nothing() -> None:
    data = {"name": "x", "language": "en", "steps": [{"say": "Hi {nickname}."}]}
    assert runner(data).start(0.0) == [Speak("Hi .")]


@pytest.mark.parametrize("value", ["vacant", "answered_machine", "no_answer"])
def test_a_script_cannot_set_what_the_call_tells(value: str) -> None:
    from dialer.errors import ConfigError

    data = {"name": "x", "language": "en", "steps": [{"set_disposition": value}]}
    with pytest.raises(ConfigError, match="a script can set"):
        parse_script(data)
