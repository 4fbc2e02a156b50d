"""A webhook deliverer in a process of its own, for the crash test.

    python tests/serve/webhook_driver.py --db URL --url http://127.0.0.1:PORT/ \\
        --secret-env NAME [--limit 8] [--concurrency 4] [--timeout 1]

Delivers the store's outbox to one endpoint (`receiver`, its secret in the environment
variable NAME) with the real clock until SIGTERM; the test SIGKILLs it mid-delivery.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import timedelta
from types import FrameType

from dialer.clock import SystemClock
from dialer.serve.webhooks import Deliverer, WebhookEndpoint, WebhookSettings
from dialer.store import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret-env", required=True)
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    endpoint = WebhookEndpoint(name="receiver", url=args.url, secret_env=args.secret_env)
    settings = WebhookSettings(endpoints=(endpoint,), timeout=timedelta(seconds=args.timeout),
                               first_retry=timedelta(seconds=0.2),
                               max_backoff=timedelta(seconds=1), concurrency=args.concurrency)
    store = open_store(args.db, migrate=False)
    try:
        with Deliverer(store, settings, SystemClock()) as deliverer:
            deliverer.run(stop, interval=0.05, limit=args.limit)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
