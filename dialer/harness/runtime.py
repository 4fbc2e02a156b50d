"""The harness at run time: phone workers on consecutive UDP ports, and the call log.

`Harness` makes the phones' sounds, starts `config.workers` pjsua2 media workers in answer
mode on the `listen` port and the ports after it (port, port+1, ...), reads their events
and writes one `PhoneCall` per call to a JSON-lines log as each call ends (appended and
flushed at once: a finished call is never lost, even if the harness dies next). A worker
that dies is started again on its port; its calls go to the log as ended by "network".

Pointing a dialer at it: each worker carries 4 calls at once (the cap of the pjsua2 wheels,
read from its `Ready`); pjsua2 refuses a fifth with 486 before any phone sees it, and such
a call is not logged (the comparison report lists it as not received). So give the dialer
one trunk per port, each with `channels: 4`, in one pool:

    trunks:
      - {name: harness-0, sip: "sip:127.0.0.1:5080", channels: 4, cps: 10}
      - {name: harness-1, sip: "sip:127.0.0.1:5081", channels: 4, cps: 10}
    pools: {harness: [harness-0, harness-1]}

(one trunk at the first port works too, with at most 4 calls at once). `trunk_lines`
prints that for a running harness.

Threads: a `Harness` is driven from one thread (`serve` or `poll`); `run_harness` runs
one until a stop event is set or a duration has passed.
"""

from __future__ import annotations

import logging
import re
import select
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from dialer.errors import ConfigError, DialerError, UsageError
from dialer.harness import audio, phones
from dialer.harness.audio import Samples
from dialer.harness.config import HarnessConfig
from dialer.harness.phones import Choice, Run
from dialer.harness.qa import PhoneCall
from lines.sip import protocol as p
from lines.sip.errors import SipError
from lines.sip.process import WorkerOptions, WorkerProcess

logger = logging.getLogger(__name__)

_USER = re.compile(r"sips?:([^@;>]+)@", re.IGNORECASE)
_ENDED_BY = {"us": "phone", "remote": "caller", "network": "network"}
_STOP_S = 6.0  # a worker's own grace (3 s) and its teardown
_RESTART_BACKOFF_S = (0.0, 1.0, 2.0, 5.0)


@dataclass(slots=True, kw_only=True)
class _Call:
    call_id: str
    choice: Choice
    dialed: str
    caller: str
    received_at: float
    answered_at: float | None = None
    keys_heard: str = ""


@dataclass(slots=True, kw_only=True)
class _Worker:
    index: int
    options: WorkerOptions
    process: WorkerProcess | None = None
    calls: dict[str, _Call] = field(default_factory=dict)  # by the worker's call id
    failures: int = 0  # restarts in a row that did not stay up
    restart_at: float | None = None


class Harness:
    """Virtual phones for one run. `start`, then `serve` (or `poll` in a loop), then
    `close`; or use it as a context manager around `serve`."""

    def __init__(self, config: HarnessConfig, *, log_path: Path, cache_dir: Path | None = None,
                 ready_timeout: float = 20.0) -> None:
        self.config = config
        self.log_path = log_path
        self.calls: list[PhoneCall] = []  # this run's, in the order they ended
        self._cache_dir = cache_dir or audio.default_cache_dir()
        self._ready_timeout = ready_timeout
        self._run: Run | None = None
        self._folder: Path | None = None
        self._log: IO[str] | None = None
        self._workers: list[_Worker] = []
        self._ids = f"{uuid.uuid4().hex[:6]}-"
        self._count = 0
        self._stopping = False
        self.cap = 4  # calls at once per worker, as the workers said when ready

    @property
    def ports(self) -> list[int]:
        first = self.config.listen[1]
        return [first + index for index in range(self.config.workers)]

    def pids(self) -> list[int | None]:
        """Each worker's process id (None while it is being restarted)."""
        return [w.process.pid if w.process is not None else None for w in self._workers]

    def trunk_lines(self) -> str:
        """A dialer's `lines` section with one trunk per phone worker, as YAML."""
        host = self.config.listen[0]
        names = [f"harness-{index}" for index in range(len(self.ports))]
        trunks = "".join(f'  - {{name: {name}, sip: "sip:{host}:{port}", '
                         f"channels: {self.cap}, cps: 10}}\n"
                         for name, port in zip(names, self.ports, strict=True))
        return f"trunks:\n{trunks}pools: {{harness: [{', '.join(names)}]}}\n"

    # life

    def start(self) -> None:
        """Make the sounds, open the log and start every worker; `UsageError` or
        `ConfigError` when one cannot (espeak-ng missing, a bad WAV file, a port in use)."""
        host, first = self.config.listen
        if first + self.config.workers - 1 > 65535:
            raise UsageError(f"{self.config.workers} workers from port {first} run past 65535")
        self._folder = Path(tempfile.mkdtemp(prefix="dialer-harness-"))
        try:
            self._run = phones.write_run(self._folder, self.config, self._sounds())
            self._log = _open_log(self.log_path)
            self._workers = [_Worker(index=index, options=self._options(host, first + index))
                             for index in range(self.config.workers)]
            for worker in self._workers:  # all at once: they start in parallel
                worker.process = self._spawn(worker)
            for worker in self._workers:
                self._wait_ready(worker)
            self.cap = min(w.process.ready.cap for w in self._workers
                           if w.process is not None and w.process.ready is not None)
        except BaseException:
            self.close()
            raise
        logger.info("harness ready: %d phone workers from port %d", len(self._workers), first)

    def _sounds(self) -> dict[str, Samples]:
        sounds: dict[str, Samples] = {}
        for name in phones.used_phones(self.config):
            def load(path: Path, name: str = name) -> Samples:
                try:
                    return audio.read_wav(path)
                except DialerError as exc:
                    raise ConfigError(f"phone {name!r}: {exc}") from None

            sounds.update(phones.phone_sounds(
                name, self.config.phone(name), lambda text: audio.speak(text, self._cache_dir),
                load))
        return sounds

    def _options(self, host: str, port: int) -> WorkerOptions:
        assert self._folder is not None
        return WorkerOptions(host=host, port=port, planner=phones.PLANNER,
                             handler=phones.HANDLER, env={phones.RUN_ENV: str(self._folder)},
                             python=sys.executable)

    def _spawn(self, worker: _Worker) -> WorkerProcess:
        """A new worker process, its prompts sent before it is ready (it reads them before
        it handles any SIP)."""
        assert self._run is not None
        try:
            process = WorkerProcess(worker.options)
        except SipError as exc:
            raise UsageError(str(exc)) from None
        for name, path in self._run.prompts.items():
            process.send(p.LoadPrompt(name=name, path=str(path)))
        return process

    def _wait_ready(self, worker: _Worker) -> None:
        assert worker.process is not None
        try:
            worker.process.wait_ready(self._ready_timeout)
        except SipError as exc:
            worker.process.close()
            worker.process = None
            hint = " (another harness or program? change 'listen' or stop it)" \
                if exc.retryable else ""
            raise UsageError(f"phone worker {worker.index} on port {worker.options.port}: "
                             f"{exc}{hint}") from None

    def serve(self, *, stop: threading.Event | None = None, duration: float | None = None
              ) -> None:
        """Answer calls until `stop` is set or `duration` seconds have passed (neither:
        until interrupted)."""
        deadline = None if duration is None else time.monotonic() + duration
        while not (stop is not None and stop.is_set()):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            self.poll(0.1 if left is None else min(0.1, left))

    def poll(self, timeout: float) -> None:
        """Handle what the workers said within `timeout` seconds; restart dead ones."""
        live = [w for w in self._workers if w.process is not None and not w.process.eof]
        fds = [w.process.stdout_fd for w in live if w.process is not None]
        if fds:
            select.select(fds, [], [], timeout)
        else:
            time.sleep(timeout)
        for worker in self._workers:
            self._drain(worker)
            if worker.process is not None and (worker.process.eof
                                               or worker.process.returncode is not None):
                self._lost(worker, "the phone worker died")
            if worker.process is None and worker.restart_at is not None \
                    and time.monotonic() >= worker.restart_at:
                self._restart(worker)

    def close(self) -> None:
        """Stop the workers (their calls are hung up and logged), close the log and remove
        the run folder. Safe to call more than once."""
        self._stopping = True
        running = [w for w in self._workers if w.process is not None]
        for worker in running:
            assert worker.process is not None
            worker.process.send(p.Stop())
        deadline = time.monotonic() + _STOP_S
        while time.monotonic() < deadline and any(
                w.process is not None and not w.process.eof for w in running):
            fds = [w.process.stdout_fd for w in running
                   if w.process is not None and not w.process.eof]
            select.select(fds, [], [], 0.1)
            for worker in running:
                self._drain(worker)
        for worker in self._workers:
            self._lost(worker, "the harness stopped")
            worker.restart_at = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> Harness:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    # events

    def _drain(self, worker: _Worker) -> None:
        process = worker.process
        if process is None:
            return
        process.flush()
        try:
            events = process.read_events()
        except SipError as exc:  # a malformed line: the worker is not ours to trust
            logger.error("phone worker %d sent a bad message (%s): restarting it",
                         worker.index, exc)
            process.kill()
            return
        for event in events:
            self._on_event(worker, event)

    def _on_event(self, worker: _Worker, event: p.Event) -> None:
        if isinstance(event, p.Incoming):
            assert self._run is not None
            dialed, caller = _user(event.to_uri), _user(event.from_uri)
            self._count += 1
            worker.calls[event.call_id] = _Call(
                call_id=f"{self._ids}{self._count}", dialed=dialed, caller=caller,
                choice=phones.plan_call(self.config, self._run.seconds, dialed),
                received_at=event.t)
        elif isinstance(event, p.Answered) and event.call_id in worker.calls:
            worker.calls[event.call_id].answered_at = event.t
        elif isinstance(event, p.Dtmf) and event.call_id in worker.calls:
            worker.calls[event.call_id].keys_heard += event.digit
        elif isinstance(event, p.Ended) and event.call_id in worker.calls:
            call = worker.calls.pop(event.call_id)
            worker.failures = 0  # it carried a call to its end: it stays up
            self._record(call, at=event.t, by=_ENDED_BY.get(event.by, event.by),
                         did=_did(call, event), media=event.media)
        elif isinstance(event, p.Failed):
            logger.error("phone worker %d failed: %s", worker.index, event.reason)

    def _record(self, call: _Call, *, at: float, by: str, did: str,
                media: p.MediaStats | None) -> None:
        plan = call.choice.plan
        keys_went = (call.answered_at is not None
                     and at - call.received_at >= plan.ring_s + plan.dtmf_delay_s)
        record = PhoneCall(
            call_id=call.call_id, dialed=call.dialed, caller=call.caller,
            phone=call.choice.phone, kind=call.choice.kind.value,
            expected=tuple(sorted(d.value for d in call.choice.expected)), did=did,
            received_at=call.received_at, answered_at=call.answered_at, ended_at=at,
            ended_by=by, keys_sent=plan.dtmf if keys_went else "",
            keys_heard=call.keys_heard,
            speech_heard_ms=media.speech_frames * 20 if media is not None else 0,
            barge_in_ms=media.barge_in_ms if media is not None else None)
        self.calls.append(record)
        if self._log is not None:
            self._log.write(record.to_json() + "\n")
            self._log.flush()

    # crashes

    def _lost(self, worker: _Worker, why: str) -> None:
        """The worker is gone: log its open calls as ended by the network, and have it
        started again (unless the harness is stopping)."""
        if worker.calls:
            logger.warning("phone worker %d: %s with %d calls up", worker.index, why,
                           len(worker.calls))
        now = time.time()
        for call in worker.calls.values():
            self._record(call, at=now, by="network", did=f"{_before_end(call)}; {why}",
                         media=None)
        worker.calls.clear()
        if worker.process is not None:
            worker.process.kill()
            worker.process.close()
            worker.process = None
            if not self._stopping:
                backoff = _RESTART_BACKOFF_S[min(worker.failures, len(_RESTART_BACKOFF_S) - 1)]
                worker.restart_at = time.monotonic() + backoff
                logger.warning("phone worker %d died: restarting it in %g s", worker.index,
                               backoff)

    def _restart(self, worker: _Worker) -> None:
        worker.restart_at = None
        worker.failures += 1
        try:
            worker.process = self._spawn(worker)
            self._wait_ready(worker)
        except UsageError as exc:
            backoff = _RESTART_BACKOFF_S[min(worker.failures, len(_RESTART_BACKOFF_S) - 1)]
            worker.restart_at = time.monotonic() + backoff
            logger.error("phone worker %d could not restart (%s): trying again in %g s",
                         worker.index, exc, backoff)
            return
        logger.info("phone worker %d restarted", worker.index)


def run_harness(config: HarnessConfig, *, log_path: Path, duration: float | None = None,
                stop_event: threading.Event | None = None, cache_dir: Path | None = None,
                on_ready: Callable[[Harness], None] | None = None) -> list[PhoneCall]:
    """Run the phones until `stop_event` is set or `duration` seconds have passed (neither:
    until interrupted); the calls they took, as also appended to `log_path`. `on_ready` is
    called once every worker listens."""
    with Harness(config, log_path=log_path, cache_dir=cache_dir) as harness:
        if on_ready is not None:
            on_ready(harness)
        harness.serve(stop=stop_event, duration=duration)
    return harness.calls


def _open_log(path: Path) -> IO[str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("a", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the call log {path}: {exc.strerror}") from None


def _user(uri: str) -> str:
    match = _USER.search(uri)
    return match.group(1) if match else ""


def _did(call: _Call, ended: p.Ended) -> str:
    """What the phone did, in words: "answered", "486 Busy Here", "180 Ringing", ..."""
    if ended.by == "us" and ended.reason.startswith("worker stopping"):
        return f"{_before_end(call)}; the harness stopped"
    if call.answered_at is not None:
        return "answered"
    if ended.by == "us" and ended.status is not None and ended.status >= 300:
        phrase = ended.reason.split(": ", 1)[-1]
        return f"{ended.status} {phrase}".strip()
    return _before_end(call)


def _before_end(call: _Call) -> str:
    """What the phone had done when the call ended before its plan did."""
    plan = call.choice.plan
    if call.answered_at is not None:
        return "answered"
    if plan.early_media is not None:
        return "183 Session Progress (early media)"
    return "180 Ringing" if plan.ring_s > 0 else "nothing yet"
