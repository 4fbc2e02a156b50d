"""A conversation with real voice parts: piper speaks, pocketsphinx hears, the runner
decides. Only the mouth (the media handler's queue, our own seam) is a recorder."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pytest

from dialer.config.script import parse_script
from dialer.talk.ears import hearing_for
from dialer.talk.session import Conversation, Voicebox
from lines.sip.payloads import AnswerVerdict, CalleeIntent, EndCall, HandlerNote
from rules.signals import AnswerKind
from voice.tts import Tts

SCRIPT: dict[str, Any] = {
    "name": "note", "language": "en", "opt_out_key": "9",
    "on_machine": "leave_message", "machine_message": "Please call the shop back, {name}.",
    "steps": [
        {"say": "Hello {name}, your parcel comes today."},
        {"menu": {"prompt": "Say agent to talk to us.", "keywords": {"agent": ["agent"]},
                  "timeout": "2s", "then": {"agent": "bye"}}},
        {"say": "Goodbye.", "label": "bye"},
        "hangup",
        {"opt_out": "You will not be called again.", "label": "out"},
        "hangup",
    ],
}


class Mouth:
    """Records what the conversation plays; prompts are numbered from 1."""

    def __init__(self) -> None:
        self.played: list[bytes] = []
        self.stopped = 0

    def play_prompt(self, pcm: bytes) -> int:
        self.played.append(pcm)
        return len(self.played)

    def stop_playing(self) -> None:
        self.stopped += 1


@pytest.fixture(scope="module")
def box() -> Voicebox:
    script = parse_script(SCRIPT)
    return Voicebox({script.name: script}, Tts(), partial(hearing_for, model_dir=None))


def talk(box: Voicebox) -> tuple[Conversation, Mouth]:
    mouth = Mouth()
    conversation = Conversation(box, box.scripts["note"], {"name": "Ann"}, mouth)
    conversation.start(time.monotonic())
    return conversation, mouth


def until(conversation: Conversation, done: Any, seconds: float = 30.0) -> list[HandlerNote]:
    """Step the conversation (as the worker's loop does) until `done()`; its notes."""
    notes: list[HandlerNote] = []
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, notes
        notes += conversation.step(time.monotonic())
        time.sleep(0.01)
    return notes


def test_a_prompt_plays_out_and_the_next_one_follows(box: Voicebox) -> None:
    conversation, mouth = talk(box)
    until(conversation, lambda: len(mouth.played) == 1)
    assert len(mouth.played[0]) > 8000  # over half a second of speech
    conversation.prompt_ended(1, interrupted=False)
    until(conversation, lambda: len(mouth.played) == 2)  # the menu's prompt


def test_stop_said_over_a_prompt_opts_out_at_once_then_confirms(box: Voicebox) -> None:
    conversation, mouth = talk(box)
    until(conversation, lambda: len(mouth.played) == 1)
    conversation.speech_started()
    conversation.utterance(bytes(1600) + Tts().render("Stop calling me.") + bytes(1600))
    notes = until(conversation, lambda: len(mouth.played) == 2)
    assert CalleeIntent(intent="opt_out") in notes
    assert mouth.stopped >= 1  # the greeting was cut for the confirmation
    conversation.prompt_ended(2, interrupted=False)
    notes = until(conversation, lambda: conversation.over)
    assert notes[-1] == EndCall(note="script note ended")


def test_the_end_of_a_stopped_prompt_is_not_taken_for_the_next(box: Voicebox) -> None:
    conversation, mouth = talk(box)
    until(conversation, lambda: len(mouth.played) == 1)
    conversation.digit("9", time.monotonic())  # opt out: the greeting stops
    until(conversation, lambda: len(mouth.played) == 2)
    conversation.prompt_ended(1, interrupted=False)  # the stopped greeting's end, late
    assert conversation.step(time.monotonic()) == []
    assert not conversation.over


def test_a_machine_gets_its_message_after_the_beep(box: Voicebox) -> None:
    conversation, mouth = talk(box)
    until(conversation, lambda: len(mouth.played) == 1)
    conversation.answer_decided(AnswerKind.MACHINE, beep_heard=False, now=time.monotonic())
    assert mouth.stopped == 1
    for _ in range(20):
        assert conversation.step(time.monotonic()) == []  # waits for the beep
    conversation.beep_ended(time.monotonic())
    until(conversation, lambda: len(mouth.played) == 2)
    conversation.prompt_ended(2, interrupted=False)
    assert conversation.step(time.monotonic()) == [
        AnswerVerdict(kind=AnswerKind.MACHINE), EndCall(note="script note: message left")]


def test_a_person_verdict_is_passed_on_and_the_script_goes_on(box: Voicebox) -> None:
    conversation, mouth = talk(box)
    conversation.answer_decided(AnswerKind.HUMAN, beep_heard=False, now=time.monotonic())
    notes = until(conversation, lambda: len(mouth.played) == 1)
    assert notes == [AnswerVerdict(kind=AnswerKind.HUMAN)]


def test_keys_sent_as_sound_count_and_a_key_sent_both_ways_counts_once(box: Voicebox) -> None:
    from dialer.media import DialerHandler
    from voice import corpus
    from voice.dtmf import DtmfDetector

    handler = DialerHandler(library=None)
    handler._conversation = Conversation(box, box.scripts["note"], {}, handler)
    handler._in_band = DtmfDetector()
    conversation = handler._conversation
    conversation.start(time.monotonic())
    keys: list[str] = []
    digit = conversation.digit
    conversation.digit = lambda key, now: (keys.append(key), digit(key, now))[1]  # type: ignore[method-assign]
    handler.answered()
    for frame in corpus.frames(corpus.pcm(corpus.join(corpus.dtmf("9"), corpus.silence(200)))):
        handler.on_frame(frame, time.monotonic())
    handler.dtmf("9")  # the same press, out of band too (some gateways send both)
    notes = handler.notes()
    assert keys == ["9"]
    assert notes.count(CalleeIntent(intent="opt_out")) == 1
