"""Ctrl-C during a long command: the first stops it gently, the second hurries it, the
third interrupts."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from dialer.cli.common import stop_on_signals


def test_signals_stop_then_hurry_then_interrupt() -> None:
    stop, hurry = threading.Event(), threading.Event()
    told: list[str] = []
    with stop_on_signals(stop, lambda: told.append("stopping"), hurry):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set()
        assert not hurry.is_set()
        assert told == ["stopping"]
        os.kill(os.getpid(), signal.SIGTERM)
        assert hurry.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_hurry_the_second_signal_interrupts() -> None:
    stop = threading.Event()
    with stop_on_signals(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
