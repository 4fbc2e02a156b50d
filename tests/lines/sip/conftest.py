"""Fixtures for the SIP tests: speech audio, sipp and media worker processes.

Every process a test starts is killed in its teardown; every wait is bounded. The audio is
made once per session with espeak-ng, resampled to 8 kHz with numpy, and also written as
raw PCMU for sipp's `rtp_stream`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sipkit import (
    ANNOUNCEMENT,
    SCENARIOS,
    SPEECH,
    Sipp,
    SippFactory,
    WorkerFactory,
    mu_law,
    speak,
    write_wav,
)

from lines.sip.process import WorkerOptions, WorkerProcess


@pytest.fixture(scope="session")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with speech.wav (8 kHz 16-bit mono) and, for sipp, speech.ulaw and
    announcement.ulaw."""
    folder = tmp_path_factory.mktemp("audio")
    speech = speak(SPEECH, folder)
    write_wav(folder / "speech.wav", speech)
    (folder / "speech.ulaw").write_bytes(mu_law(speech))
    announcement = speak(ANNOUNCEMENT, folder)
    (folder / "announcement.ulaw").write_bytes(mu_law(announcement))
    return folder


@pytest.fixture
def sipp(tmp_path: Path, audio: Path) -> Iterator[SippFactory]:
    """Start sipp: `sipp("reject.xml", CODE="486", ...)` fills a scenario's @KEYS@;
    `sipp(builtin="uas", args=[...])` runs a built-in one."""
    started: list[Sipp] = []

    def start(scenario: str | None = None, *, builtin: str | None = None,
              args: tuple[str, ...] = (), **keys: str) -> Sipp:
        if scenario is not None:
            text = (SCENARIOS / scenario).read_text()
            headers = keys.pop("EXTRA_HEADERS", "")
            text = re.sub(r"^[ \t]*@EXTRA_HEADERS@\n", headers + "\n" if headers else "", text,
                          flags=re.MULTILINE)
            for key, value in keys.items():
                text = text.replace(f"@{key}@", value)
            assert not re.search(r"@[A-Z_]+@", text), "a scenario key was not given"
            path = tmp_path / f"{len(started)}-{scenario}"
            path.write_text(text)
            chosen = ["-sf", str(path)]
        else:
            chosen = ["-sn", builtin or "uas"]
        process = Sipp([*chosen, *args], audio, tmp_path / f"sipp-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def workers() -> Iterator[WorkerFactory]:
    """Start media workers (ready when returned); all stopped or killed afterwards."""
    started: list[WorkerProcess] = []

    def start(options: WorkerOptions | None = None) -> WorkerProcess:
        process = WorkerProcess(options or WorkerOptions())
        started.append(process)
        process.wait_ready(15)
        return process

    yield start
    for process in started:
        process.stop(timeout=5)
        process.close()
