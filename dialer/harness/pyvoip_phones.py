"""pyVoIP phones: a second, independent SIP stack for the harness to answer the dialer with.

The harness's own phones are pjsua2 media workers, like the dialer's. For interoperability
tests the far end can instead be pyVoIP (a pure-Python SIP/RTP stack): phones registered as
users with a registrar (`dialer.harness.registrar`, Kamailio), so a dialer whose trunk points
at the registrar reaches them by number.

    phones = [PyVoipPhone(user="+15550000001", talk_s=2.0, play=pcm)]
    with Registrar() as registrar, PyVoipPhones(phones, server=registrar.address) as station:
        ...  # dial sip:+15550000001@127.0.0.1:<registrar port>
        (call,) = station.wait_for(lambda calls: len(calls) == 1, timeout=10)

Each phone answers every incoming call (after pyVoIP's own 1 s and `ring_s` more), plays
`play` once, listens, and hangs up after `talk_s`, or refuses calls with 486 when `answer`
is False. A call the caller cancels while it rings ends with 487 (pyVoIP itself would
answer it anyway: it replies 200 to the CANCEL and forgets it). Every call a phone received
becomes a `PyVoipCall` when it is over.

Containment: pyVoIP runs in a child process (`dialer.harness.pyvoip_station`), never in the
caller's. It starts several threads per phone and per call, sleeps in them, prints, and
resets the process's warning filters (`warnings.simplefilter("default")`) on some failures;
a process keeps all of that away from the caller, and can always be killed. `stop` asks the
child to hang up, deregister and exit, and kills it if it has not within `stop_timeout`.

What pyVoIP 1.6.8 cannot do as a callee (so these phones do not offer it): early media
(183), refusals other than 486 (and the 487 above), answering sooner than a second after
the INVITE, codecs other than PCMU/PCMA, and audio finer than 8 bits.
It also needs the registrar as an outbound proxy: it sends every request and response to
the server it registered with.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import numpy as np

from dialer.errors import TelephonyError, UsageError

logger = logging.getLogger(__name__)

_ROOT: Final = str(Path(__file__).resolve().parents[2])  # where the `dialer` package lives
_STATION: Final = "dialer.harness.pyvoip_station"
_LOG_TAIL: Final = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class PyVoipPhone:
    """One pyVoIP phone: registered as `user` (the number a dialer dials, or a name).

    `ring_s`: ringing before it answers, on top of pyVoIP's own 1 s. `answer` False: it
    refuses every call with 486 Busy Here. `talk_s`: it hangs up this long after answering
    (None: it waits for the caller). `play`: 8 kHz 16-bit signed mono PCM it plays once
    answered (pyVoIP sends it as 8-bit audio).
    """

    user: str
    ring_s: float = 0.0
    answer: bool = True
    talk_s: float | None = 2.0
    play: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if not self.user or any(c in self.user for c in "@:;<> \t\r\n"):
            raise UsageError("a pyVoIP phone's user must be a plain SIP user part")
        if self.ring_s < 0 or (self.talk_s is not None and self.talk_s <= 0):
            raise UsageError("a pyVoIP phone's ring_s must be >= 0 and its talk_s > 0")
        if len(self.play) % 2:
            raise UsageError("a pyVoIP phone's audio must be 16-bit PCM (an even length)")


@dataclass(frozen=True, slots=True, kw_only=True)
class PyVoipCall:
    """What a pyVoIP phone did with one incoming call. Times are epoch seconds."""

    user: str  # the phone's user
    sip_call_id: str
    caller: str  # the From user part
    received_at: float  # when the INVITE reached the phone
    did: str  # "answered", "486 Busy Here", "cancelled" (by the caller), or "error: ..."
    answered_at: float | None = None
    ended_at: float | None = None
    ended_by: str = ""  # "phone" (talk time over, or refused), "caller", "harness" (stopped)
    bytes_played: int = 0  # 8-bit samples queued to play
    bytes_heard: int = 0  # 8-bit samples heard that were louder than silence


def to_unsigned_8bit(pcm: bytes) -> bytes:
    """16-bit signed little-endian PCM as pyVoIP's audio: 8-bit unsigned, 128 silence."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    return ((samples >> 8) + 128).astype(np.uint8).tobytes()


class PyVoipPhones:
    """The phones, in one child process; use as a context manager, or `start` and `stop`.

    `server` is the registrar's (host, port); `host` the address the phones bind to.
    `start` returns once every phone is registered (within `start_timeout`).
    """

    def __init__(self, phones: Sequence[PyVoipPhone], *, server: tuple[str, int],
                 host: str = "127.0.0.1", start_timeout: float = 15.0,
                 stop_timeout: float = 10.0, python: str = sys.executable) -> None:
        users = [phone.user for phone in phones]
        if not phones or len(set(users)) != len(users):
            raise UsageError("give at least one pyVoIP phone, each with its own user")
        self._phones = tuple(phones)
        self._server = server
        self._host = host
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._buffer = b""
        self._calls: list[PyVoipCall] = []
        self._registered: set[int] = set()
        self._ready = False
        self._error: str | None = None
        self._last_log = ""

    # life

    def __enter__(self) -> PyVoipPhones:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Start the child and wait until every phone is registered; stopped on failure."""
        if self._process is not None:
            raise UsageError("the pyVoIP phones are already running")
        try:
            self._spawn()
            deadline = time.monotonic() + self._start_timeout
            while not self._ready:
                left = deadline - time.monotonic()
                if self._error is not None or left <= 0 or not self._pump(left):
                    raise self._failure("did not register")
        except BaseException:
            if self._process is not None:  # nothing registered to take back: no grace
                self._process.kill()
            self.stop()
            raise
        logger.info("%d pyVoIP phone(s) registered (pid %s)", len(self._phones), self.pid)

    def _spawn(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="dialer-pyvoip-")
        self._stderr = (Path(self._folder.name) / "station.log").open("wb")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
        try:
            self._process = subprocess.Popen(
                [self._python, "-m", _STATION], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self._stderr, env=env, bufsize=0, start_new_session=True)
        except OSError as exc:
            raise TelephonyError(f"cannot start the pyVoIP phones ({self._python}): "
                                 f"{exc}") from exc
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(self._config()).encode() + b"\n")

    def _config(self) -> dict[str, Any]:
        return {"server": list(self._server), "host": self._host, "phones": [
            {"user": phone.user, "ring_s": phone.ring_s, "answer": phone.answer,
             "talk_s": phone.talk_s,
             "play": base64.b64encode(to_unsigned_8bit(phone.play)).decode("ascii")}
            for phone in self._phones]}

    def stop(self) -> None:
        """Hang up, deregister and end the child (killed after `stop_timeout`); the calls
        it reports while stopping are kept."""
        process, self._process = self._process, None
        if process is not None:
            self._stop(process)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._folder is not None:
            self._last_log = self.log()
            self._folder.cleanup()
            self._folder = None

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        with contextlib.suppress(OSError):
            process.stdin.close()  # the child stops at the end of its input
        deadline = time.monotonic() + self._stop_timeout
        while process.poll() is None and (left := deadline - time.monotonic()) > 0:
            self._pump(min(left, 0.2), process)
        if process.poll() is None:
            logger.warning("pyVoIP phones (pid %s) did not stop in %s s: killed", process.pid,
                           self._stop_timeout)
            process.kill()
        process.wait(timeout=5)
        drained = time.monotonic() + 2
        while self._pump(0.05, process) and time.monotonic() < drained:
            pass
        process.stdout.close()

    # what the phones did

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def calls(self) -> list[PyVoipCall]:
        """Every call over so far, in the order they ended."""
        if self._process is not None:
            self._pump(0)
        return list(self._calls)

    def wait_for(self, done: Callable[[list[PyVoipCall]], bool],
                 timeout: float) -> list[PyVoipCall]:
        """The calls, once `done(calls)` holds; `TimeoutError` after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not done(self.calls):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"pyVoIP phones: gave up after {timeout:g} s with "
                                   f"{len(self._calls)} call(s) over")
            if self._process is None or not self._pump(left):
                raise self._failure("stopped while waited for")
        return list(self._calls)

    def log(self) -> str:
        """The child's stderr (pyVoIP's prints and our diagnostics)."""
        if self._folder is None:
            return self._last_log
        path = Path(self._folder.name) / "station.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # the child's reports

    def _pump(self, timeout: float, process: subprocess.Popen[bytes] | None = None) -> bool:
        """Read what the child reported within `timeout`; False once its output ended."""
        process = process or self._process
        if process is None or process.stdout is None or process.stdout.closed:
            return False
        readable, _, _ = select.select([process.stdout], [], [], max(timeout, 0))
        if not readable:
            return True
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            return False
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._on_report(json.loads(line))
        return True

    def _on_report(self, report: dict[str, Any]) -> None:
        kind = report.pop("type")
        if kind == "call":
            self._calls.append(PyVoipCall(**report))
        elif kind == "registered":
            self._registered.add(int(report["index"]))
        elif kind == "ready":
            self._ready = True
        elif kind == "error":
            self._error = str(report["message"])

    def _failure(self, what: str) -> TelephonyError:
        log = self.log()
        done = f"{len(self._registered)} of {len(self._phones)} registered"
        return TelephonyError(f"pyVoIP phones {what} ({done}; {self._error or 'no error'});"
                              f" their log ends:\n{log[-_LOG_TAIL:]}", retryable=True)
