"""One pjsua2 endpoint per media worker process, set up the way our calls need it.

- No pjsua2 threads (`threadCnt=0`, `mainThreadOnly`): the worker's loop drives SIP by
  calling `libHandleEvents`; media runs on the one pjmedia clock thread.
- The conference bridge runs at 8 kHz and PCMU/PCMA are the only codecs offered (the
  default would put speex/16000 first); the null sound device (no sound card).
- The real call cap is read from the library (`pjsua_call_get_max_count` through ctypes):
  the PyPI wheels are built with 4, whatever `maxCalls` asks for.
"""

from __future__ import annotations

import ctypes
import errno
import functools
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj
import pjsua2.pjsua2 as bindings

from lines.sip.errors import SipError
from lines.sip.pcm import SAMPLE_RATE

_CODECS = ("PCMU/8000", "PCMA/8000")
MAX_ACCOUNTS = 8  # PJSUA_MAX_ACC: one more asserts and kills the process


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointSettings:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    log_level: int = 0  # pjsua2's own log, written to stderr; 0 is silent
    media_ports: int = 64


@functools.cache
def _library() -> ctypes.CDLL:
    return ctypes.CDLL(bindings._pjsua2.__file__)


def call_cap() -> int:
    """The number of concurrent calls this pjsua2 build allows per process."""
    return int(_library().pjsua_call_get_max_count())


def calls_held() -> int:
    """The number of call slots pjsua2 holds now. It lets a call's slot go one event after
    the call's DISCONNECTED callback, so this can lag the worker's own count."""
    return int(_library().pjsua_call_get_count())


def open_endpoint(settings: EndpointSettings) -> tuple[Any, int]:
    """A started endpoint with a UDP transport, and the port that transport is bound to."""
    _library().pj_log_set_level(settings.log_level)  # libCreate logs before any config
    endpoint = pj.Endpoint()
    endpoint.libCreate()
    try:
        endpoint.libInit(_config(settings))
        port = _open_transport(endpoint, settings)
        endpoint.audDevManager().setNullDev()
        endpoint.libStart()
        _prefer_g711(endpoint)
    except BaseException:
        endpoint.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        raise
    return endpoint, port


def _config(settings: EndpointSettings) -> Any:
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.uaConfig.maxCalls = call_cap()
    config.uaConfig.userAgent = "dialer-media-worker"
    config.logConfig.level = settings.log_level
    config.logConfig.consoleLevel = settings.log_level
    config.medConfig.clockRate = SAMPLE_RATE
    config.medConfig.sndClockRate = SAMPLE_RATE
    config.medConfig.maxMediaPorts = settings.media_ports
    config.medConfig.noVad = True  # send every frame: the far end's VAD is not ours to guess
    return config


def _open_transport(endpoint: Any, settings: EndpointSettings) -> int:
    transport = pj.TransportConfig()
    transport.boundAddress = settings.host
    transport.port = settings.port
    try:
        transport_id = endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    except pj.Error as exc:
        in_use = exc.status == 120000 + errno.EADDRINUSE  # PJ_STATUS_FROM_OS
        what = "is in use" if in_use else f"cannot be bound ({exc.reason})"
        raise SipError(f"SIP port {settings.port} on {settings.host} {what}",
                       retryable=in_use) from exc
    return int(endpoint.transportGetInfo(transport_id).localName.rsplit(":", 1)[1])


def _prefer_g711(endpoint: Any) -> None:
    for codec in endpoint.codecEnum2():
        name = codec.codecId.rsplit("/", 1)[0]  # "PCMU/8000/1": drop the channel count
        priority = 254 - _CODECS.index(name) if name in _CODECS else 0
        endpoint.codecSetPriority(codec.codecId, priority)


def verify_uri(endpoint: Any, uri: str) -> bool:
    return int(endpoint.utilVerifySipUri(uri)) == 0  # a pj_status_t: 0 is PJ_SUCCESS
