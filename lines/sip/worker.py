"""A media worker: one pjsua2 endpoint in its own process, driven by protocol commands.

Run as `python -m lines.sip.worker`: commands arrive as JSON lines on stdin, events leave
as JSON lines on stdout (see `lines.sip.protocol`). Pipes, not a socket: the supervisor
spawns the worker, so the pipes come for free, need no port, and tell it at once when
either side dies (EOF); a remote worker is the same program behind ssh or socat.
pjsua2 and C code may print, so the worker keeps the original stdout for events only and
points file descriptor 1 at stderr.

One thread drives SIP: the loop calls `libHandleEvents` with a short timeout, then reads
whatever commands arrived, then fires due timers (ring and setup timeouts, answer-plan
steps). pjsua2 calls back on this thread; media runs on pjmedia's clock thread, inside
the ports (`lines.sip.media`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lines.sip import protocol as p
from lines.sip.answer import Planner
from lines.sip.endpoint import EndpointSettings
from lines.sip.errors import ProtocolError, SipError
from lines.sip.media import HandlerFactory, default_handler
from lines.sip.station import Station

logger = logging.getLogger(__name__)

Emit = Callable[[p.Event], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    # The longest a command waits to be read. SIP traffic wakes libHandleEvents at once; only
    # the command pipe is polled between its calls. 5 ms costs 3.4% of a core per idle worker,
    # 20 ms 1.4%.
    poll_ms: int = 20
    stop_grace_s: float = 3.0  # how long Stop waits for calls to end before tearing down


class CommandReader:
    """Whole command lines from a file descriptor, without blocking."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self.closed = False

    def read(self) -> list[p.Command]:
        commands: list[p.Command] = []
        while not self.closed and select.select([self._fd], [], [], 0)[0]:
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:
                self.closed = True
                break
            self._buffer += chunk
            *lines, self._buffer = self._buffer.split(b"\n")
            commands += [p.decode_command(line) for line in lines if line.strip()]
        return commands


def run(settings: WorkerSettings, commands_fd: int, events_fd: int, *,
        handlers: HandlerFactory = default_handler, planner: Planner | None = None) -> int:
    """The worker's life: start, serve commands until Stop or EOF, tear down. Returns the
    process exit code."""

    def emit(event: p.Event) -> None:
        os.write(events_fd, p.encode(event))

    station = Station(emit, handlers=handlers, planner=planner)
    try:
        emit(station.start(settings.endpoint))
    except SipError as exc:
        logger.error("cannot start: %s", exc)
        emit(p.Failed(t=time.time(), reason=str(exc)))
        return 2
    reader = CommandReader(commands_fd)
    stop_by: float | None = None
    try:
        while stop_by is None or (station.busy and time.monotonic() < stop_by):
            # Commands first: prompts sent before Ready are loaded before any SIP is handled,
            # so an answer plan never names a prompt that is still in the pipe.
            for command in reader.read():
                if isinstance(command, p.Stop):
                    stop_by = _stop(station, settings)
                else:
                    station.handle(command)
            station.poll(settings.poll_ms)
            if reader.closed and stop_by is None:
                logger.info("command pipe closed: stopping")
                stop_by = _stop(station, settings)
    except ProtocolError as exc:
        emit(p.Failed(t=time.time(), reason=f"bad command: {exc}"))
        return 2
    finally:
        station.close()
    return 0


def _stop(station: Station, settings: WorkerSettings) -> float:
    station.hang_up_all("worker stopping")
    return time.monotonic() + settings.stop_grace_s


def _load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    if not name:
        raise SipError(f"{spec!r}: expected module:attribute")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lines.sip.worker",
                                     description="A pjsua2 media worker on stdin/stdout.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind SIP and RTP to")
    parser.add_argument("--port", type=int, default=0, help="SIP UDP port (0: any free one)")
    parser.add_argument("--pjsua-log-level", type=int, default=0)
    parser.add_argument("--handler", help="module:callable making a call's media handler")
    parser.add_argument("--planner", help="module:callable planning incoming calls")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s worker[%(process)d] %(levelname)s %(message)s")
    events_fd = os.dup(1)  # the protocol's own copy of stdout
    os.dup2(2, 1)  # whatever else prints (pjsua2, C code) goes to stderr
    settings = WorkerSettings(endpoint=EndpointSettings(host=args.host, port=args.port,
                                                        log_level=args.pjsua_log_level))
    handlers: HandlerFactory = _load(args.handler) if args.handler else default_handler
    planner = _load(args.planner) if args.planner else None
    return run(settings, sys.stdin.fileno(), events_fd, handlers=handlers, planner=planner)


if __name__ == "__main__":
    sys.exit(main())
