"""`dialer serve` killed with SIGKILL mid-delivery, again and again: after the last restart
every webhook event is delivered (exactly once after the receiver's dedup by id), every
attempt has one outcome event, and the campaign's end is announced.

The real service runs in a process of its own (the example cart-recovery campaign on the
simulated network at 300x) against a receiver on 127.0.0.1 that takes a little time per
request, so kills land while deliveries are in flight.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from dialer.serve.webhooks import delivery_counts
from dialer.store import Store, open_store
from dialer.store.schema import attempts, webhook_events
from tests.serve.test_webhooks import SECRET, Receiver

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "cart-recovery" / "campaign.yaml"
KEY = re.compile(r"dk_[0-9a-f]{12}_[A-Za-z0-9_-]+")
DEADLINE = 90.0  # seconds, the whole test


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until(check: Callable[[], bool], deadline: float, what: str) -> None:
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Service:
    """`python -m dialer serve` in a process of its own."""

    def __init__(self, tmp_path: Path, url: str, port: int, config: Path) -> None:
        self.args = [sys.executable, "-m", "dialer", "serve", str(EXAMPLE), "--db", url,
                     "--port", str(port), "--speed", "300", "--config", str(config)]
        self.port, self.log = port, tmp_path / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "HOOK_A": SECRET, "COLUMNS": "400"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.args, cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)
        self.process.wait(timeout=30)

    def admin_key(self) -> str:
        found = KEY.search(self.log.read_text(encoding="utf-8", errors="replace"))
        assert found is not None, "the first start printed no admin key"
        return found.group(0)


def _pending(store: Store) -> int:
    with store.read() as uow:
        return delivery_counts(uow)["pending"]


@pytest.mark.slow
def test_webhooks_survive_sigkills_of_the_service(tmp_path: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    store = open_store(url)
    with Receiver(delay=0.01) as receiver:
        config = tmp_path / "serve.yaml"
        config.write_text("webhooks:\n  endpoints:\n    - name: shop\n"
                          f"      url: {receiver.url}/hooks\n      secret_env: HOOK_A\n",
                          encoding="utf-8")
        service = Service(tmp_path, url, _free_port(), config)
        for _ in range(3):  # run, let deliveries flow, kill in the middle of them
            service.start()
            seen = len(receiver.ids())
            _until(lambda seen=seen: len(receiver.ids()) >= seen + 40, deadline,
                   "deliveries after a start")
            service.signal(signal.SIGKILL)
        service.start()
        headers = {"X-API-Key": service.admin_key()}
        base = f"http://127.0.0.1:{service.port}/api/v1/campaigns/cart-recovery"

        def stopped() -> bool:
            try:
                answer = httpx.post(f"{base}/stop", headers=headers, timeout=5)
            except httpx.TransportError:
                return False  # not listening yet
            return answer.status_code in (200, 409)

        _until(stopped, deadline, "the restarted service to take the stop")
        _until(lambda: httpx.get(base, headers=headers, timeout=5).json()["state"] == "finished",
               deadline, "the campaign to finish")
        _until(lambda: _pending(store) == 0, deadline, "every delivery")
        service.signal(signal.SIGTERM)

    with store.read() as uow:
        conn = uow._conn
        event_ids = set(conn.execute(select(webhook_events.c.event_id)).scalars())
        by_type = dict(conn.execute(select(webhook_events.c.type, func.count())
                                    .group_by(webhook_events.c.type)).all())
        closed = conn.execute(select(func.count()).select_from(attempts)
                              .where(attempts.c.disposition.is_not(None))).scalar_one()
        counts = delivery_counts(uow)
    store.close()
    received = receiver.ids()
    assert set(received) == event_ids  # every event arrived; dedup by id gives each once
    assert counts["delivered"] == len(event_ids)
    assert counts["pending"] == counts["failed"] == 0
    assert all(r.signed for r in receiver.received)
    assert by_type["attempt.ended"] == closed  # one outcome event per attempt, crashes too
    assert by_type["campaign.finished"] >= 1
