"""A caller for the harness tests: a media worker handler that stops its prompt when the far
end talks over it, as a dialer with barge-in does (`--handler tests.harness.callers:...`)."""

from __future__ import annotations

from lines.sip.media import MediaHandler, PromptAndVad

_SPEECH_RUN = 3  # speech frames in a row that stop the prompt (60 ms)


class BargeInCaller(PromptAndVad):
    def __init__(self) -> None:
        super().__init__()
        self._run = 0

    def on_frame(self, pcm: bytes, at: float) -> None:
        before = self._speech
        super().on_frame(pcm, at)
        if not self._queue:  # not playing: nothing to stop
            self._run = 0
            return
        self._run = self._run + 1 if self._speech > before else 0
        if self._run >= _SPEECH_RUN:
            self.stop_playing()


def barge_in_handler(call_id: str) -> MediaHandler:
    return BargeInCaller()
