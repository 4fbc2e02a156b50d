"""Telephone lines: telephony backends, trunk pools with failover, caller-ID pools.

May use `rules`; never `voice` or `dialer`.
"""
