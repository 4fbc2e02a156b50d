"""A media worker process seen from the supervising side: spawn it, talk to it, end it.

`WorkerProcess` never blocks in `send`, `flush` or `read_events` (its pipes are
non-blocking), so one thread can serve many workers with a selector; `send` may be called
from any thread. `wait_ready` and
`next_event` block, with a timeout, for tests and tools that drive one worker directly.
The worker's stderr (its log) is inherited.
"""

from __future__ import annotations

import collections
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lines.sip import protocol as p
from lines.sip.errors import SipError

_ROOT = str(Path(__file__).resolve().parents[2])  # where the `lines` package lives


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    host: str = "127.0.0.1"
    port: int = 0  # SIP UDP port; 0: any free one
    pjsua_log_level: int = 0
    handler: str | None = None  # "module:callable" making each call's media handler
    planner: str | None = None  # "module:callable" planning incoming calls
    env: Mapping[str, str] = field(default_factory=dict)  # added to the worker's environment
    python: str = sys.executable

    def argv(self) -> list[str]:
        argv = [self.python, "-m", "lines.sip.worker", "--host", self.host,
                "--port", str(self.port), "--pjsua-log-level", str(self.pjsua_log_level)]
        if self.handler:
            argv += ["--handler", self.handler]
        if self.planner:
            argv += ["--planner", self.planner]
        return argv


class WorkerProcess:
    def __init__(self, options: WorkerOptions) -> None:
        env = dict(os.environ)
        env.update(options.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH")]))
        try:
            self._process = subprocess.Popen(options.argv(), stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, env=env, bufsize=0)
        except OSError as exc:
            raise SipError(f"cannot start a media worker ({options.python}): {exc}") from exc
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self.stdin_fd = self._process.stdin.fileno()
        self.stdout_fd = self._process.stdout.fileno()
        os.set_blocking(self.stdin_fd, False)
        os.set_blocking(self.stdout_fd, False)
        self._out = bytearray()
        self._in = b""
        self._lock = threading.Lock()  # send() may come from any thread
        self._backlog: collections.deque[p.Event] = collections.deque()
        self.eof = False
        self.ready: p.Ready | None = None

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.poll()

    # non-blocking

    def send(self, command: p.Command) -> None:
        """Queue the command and write what the pipe takes now (the rest: `flush`)."""
        with self._lock:
            self._out += p.encode(command)
        self.flush()

    @property
    def has_output(self) -> bool:
        return bool(self._out)

    def flush(self) -> None:
        """Write what the pipe takes now; a dead worker's pipe swallows nothing."""
        with self._lock:
            if not self._out:
                return
            try:
                written = os.write(self.stdin_fd, self._out)
            except BlockingIOError:
                return
            except (BrokenPipeError, OSError):
                self._out.clear()
                return
            del self._out[:written]

    def read_events(self) -> list[p.Event]:
        """The events that have arrived; sets `eof` when the worker closed its end."""
        events = [*self._backlog, *self._read()]
        self._backlog.clear()
        return events

    def _read(self) -> list[p.Event]:
        while not self.eof:
            try:
                chunk = os.read(self.stdout_fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                break
            self._in += chunk
        *lines, self._in = self._in.split(b"\n")
        events = [p.decode_event(line) for line in lines if line.strip()]
        for event in events:
            if isinstance(event, p.Ready):
                self.ready = event
        return events

    # blocking, with timeouts

    def next_event(self, timeout: float) -> p.Event | None:
        """The next event within `timeout` seconds (None: none came, or the worker died)."""
        deadline = time.monotonic() + timeout
        while not self._backlog:
            self.flush()
            left = deadline - time.monotonic()
            if self.eof or left <= 0:
                return None
            writing = [self.stdin_fd] if self.has_output else []
            select.select([self.stdout_fd], writing, [], min(left, 0.1))
            self._backlog.extend(self._read())
        return self._backlog.popleft()

    def wait_ready(self, timeout: float) -> p.Ready:
        deadline = time.monotonic() + timeout
        while self.ready is None:
            event = self.next_event(max(0.0, deadline - time.monotonic()))
            if isinstance(event, p.Failed):
                raise SipError(f"media worker {self.pid} could not start: {event.reason}",
                               retryable="in use" in event.reason)
            if event is None:
                self.kill()
                code = self._process.wait(timeout=5)
                what = f"exited with code {code}" if self.eof else f"not ready in {timeout:g} s"
                raise SipError(f"media worker {self.pid} {what} (its log is on stderr)")
        return self.ready

    def stop(self, timeout: float) -> int:
        """Ask the worker to hang up and exit; kill it when it takes longer than `timeout`."""
        self.send(p.Stop())
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self.next_event(0.05)  # drain, so the worker never blocks writing
        try:
            return self._process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            return self._process.wait(timeout=5)

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()

    def close(self) -> None:
        """Reap the (dead) process and close the pipes."""
        self.kill()
        self._process.wait(timeout=5)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
