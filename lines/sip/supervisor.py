"""Keeps a fixed set of media workers alive and carries their messages, on one thread.

- `start` spawns every worker and waits (bounded) until each is ready; a worker that
  cannot start is a `SipError` for the caller, and no process is left behind.
- Then one I/O thread serves all workers with a selector: it writes queued commands,
  reads events and hands them to the `WorkerListener`, pings each ready worker and kills
  one that does not answer within `ping_timeout_s`.
- A worker whose pipe closes (it crashed, was killed, or was unresponsive) is reported
  with `worker_lost` and started again at once; one that dies before it is ready is
  started again after a back-off that doubles up to 30 s.
- Listener callbacks run on the I/O thread, in order, one at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from lines.sip import protocol as p
from lines.sip.errors import SipError
from lines.sip.process import WorkerOptions, WorkerProcess

logger = logging.getLogger(__name__)

_MAX_BACKOFF_S = 30.0


class WorkerListener(Protocol):
    def worker_ready(self, index: int, ready: p.Ready) -> None: ...

    def worker_event(self, index: int, event: p.Event) -> None: ...

    def worker_lost(self, index: int, reason: str) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    start_timeout_s: float = 15.0
    ping_interval_s: float = 1.0
    ping_timeout_s: float = 5.0
    stop_timeout_s: float = 5.0


class _Seat:
    """One worker position: its current process and what the loop knows of it."""

    def __init__(self, index: int, options: WorkerOptions) -> None:
        self.index = index
        self.options = options
        self.process: WorkerProcess | None = None
        self.writing = False
        self.ping_sent_at: float | None = None
        self.next_ping_at = 0.0
        self.backoff_s = 0.5
        self.restart_at: float | None = None
        self.killed_why: str | None = None


class Supervisor:
    def __init__(self, options: Sequence[WorkerOptions], listener: WorkerListener,
                 timing: Timing) -> None:
        self._seats = [_Seat(index, option) for index, option in enumerate(options)]
        self._listener = listener
        self._timing = timing
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._soon: list[Callable[[], None]] = []
        self._soon_lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="sip-supervisor", daemon=True)

    # from any thread

    def start(self) -> None:
        """Spawn every worker and wait until all are ready, then start the I/O thread."""
        try:
            for seat in self._seats:
                seat.process = WorkerProcess(seat.options)
            for seat in self._seats:
                assert seat.process is not None
                ready = seat.process.wait_ready(self._timing.start_timeout_s)
                self._listener.worker_ready(seat.index, ready)
        except SipError:
            for seat in self._seats:
                if seat.process is not None:
                    seat.process.close()
            self._selector.close()
            self._close_wake()
            raise
        for seat in self._seats:
            self._watch(seat)
        self._thread.start()

    def send(self, index: int, command: p.Command) -> None:
        process = self._seats[index].process
        if process is not None:
            process.send(command)
            self._wake()

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run `callback` on the I/O thread (so that listeners see one thread only)."""
        with self._soon_lock:
            self._soon.append(callback)
        self._wake()

    def stop(self) -> None:
        """Ask every worker to stop, wait for them (killing stragglers), end the thread."""
        if not self._thread.is_alive():
            return
        self._stopping = True
        for seat in self._seats:
            self.send(seat.index, p.Stop())
        self._thread.join(self._timing.stop_timeout_s + 10)

    def pids(self) -> list[int | None]:
        return [seat.process.pid if seat.process else None for seat in self._seats]

    def _wake(self) -> None:
        if self._wake_write < 0:
            return  # the loop is over
        with contextlib.suppress(BlockingIOError):  # a full pipe is awake enough
            os.write(self._wake_write, b"x")

    # the I/O thread

    def _loop(self) -> None:
        stop_by: float | None = None
        while True:
            if self._stopping and stop_by is None:
                stop_by = time.monotonic() + self._timing.stop_timeout_s
            if stop_by is not None and (time.monotonic() > stop_by or not self._live()):
                break
            for key, mask in self._selector.select(timeout=0.1):
                if key.data is None:
                    self._drain_wake()
                elif mask & selectors.EVENT_WRITE:
                    key.data.process.flush()
                else:
                    self._read(key.data)
            self._run_soon()
            now = time.monotonic()
            for seat in self._seats:
                self._tend(seat, now)
        for seat in self._seats:
            if seat.process is not None:
                self._unwatch(seat)
                seat.process.close()
                seat.process = None
        self._selector.close()
        self._close_wake()

    def _live(self) -> bool:
        return any(seat.process is not None and not seat.process.eof for seat in self._seats)

    def _read(self, seat: _Seat) -> None:
        process = seat.process
        assert process is not None
        for event in process.read_events():
            if isinstance(event, p.Ready):
                seat.backoff_s = 0.5
                self._listener.worker_ready(seat.index, event)
            elif isinstance(event, p.Pong):
                seat.ping_sent_at = None
            elif isinstance(event, p.Failed):
                logger.error("media worker %d failed: %s", seat.index, event.reason)
            self._listener.worker_event(seat.index, event)
        if process.eof:
            self._lost(seat)

    def _lost(self, seat: _Seat) -> None:
        process = seat.process
        assert process is not None
        self._unwatch(seat)
        process.close()
        seat.process = None
        if self._stopping:
            return
        why = seat.killed_why or f"exit code {process.returncode}"
        seat.killed_why = None
        logger.error("media worker %d (pid %d) lost: %s", seat.index, process.pid, why)
        self._listener.worker_lost(seat.index, why)
        if process.ready is None:  # died starting: wait before trying again
            seat.restart_at = time.monotonic() + seat.backoff_s
            seat.backoff_s = min(2 * seat.backoff_s, _MAX_BACKOFF_S)
        else:
            self._respawn(seat)

    def _respawn(self, seat: _Seat) -> None:
        seat.restart_at = None
        try:
            seat.process = WorkerProcess(seat.options)
        except SipError as exc:
            logger.error("media worker %d cannot be started again: %s", seat.index, exc)
            seat.restart_at = time.monotonic() + seat.backoff_s
            return
        seat.ping_sent_at, seat.next_ping_at = None, 0.0
        self._watch(seat)

    def _tend(self, seat: _Seat, now: float) -> None:
        """Restarts that are due, pings, and which pipes wait to be written."""
        if seat.process is None:
            if seat.restart_at is not None and now >= seat.restart_at and not self._stopping:
                self._respawn(seat)
            return
        process = seat.process
        if process.ready is not None and not self._stopping:
            if seat.ping_sent_at is None and now >= seat.next_ping_at:
                seat.ping_sent_at, seat.next_ping_at = now, now + self._timing.ping_interval_s
                process.send(p.Ping(seq=int(now * 1000)))
            elif seat.ping_sent_at is not None and now - seat.ping_sent_at > \
                    self._timing.ping_timeout_s:
                seat.killed_why = f"no answer to a ping in {self._timing.ping_timeout_s:g} s"
                process.kill()
        process.flush()
        if process.has_output != seat.writing:
            seat.writing = process.has_output
            if seat.writing:
                self._selector.register(process.stdin_fd, selectors.EVENT_WRITE, seat)
            else:
                self._selector.unregister(process.stdin_fd)

    def _watch(self, seat: _Seat) -> None:
        assert seat.process is not None
        self._selector.register(seat.process.stdout_fd, selectors.EVENT_READ, seat)

    def _unwatch(self, seat: _Seat) -> None:
        assert seat.process is not None
        self._selector.unregister(seat.process.stdout_fd)
        if seat.writing:
            self._selector.unregister(seat.process.stdin_fd)
            seat.writing = False

    def _run_soon(self) -> None:
        with self._soon_lock:
            callbacks, self._soon = self._soon, []
        for callback in callbacks:
            callback()

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 4096):
                pass

    def _close_wake(self) -> None:
        fds, self._wake_read, self._wake_write = (self._wake_read, self._wake_write), -1, -1
        for fd in fds:
            os.close(fd)
