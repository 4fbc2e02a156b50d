"""Everything that listens or speaks, on 8 kHz 16-bit PCM frames, with no SIP in it.

May use `rules`; never `lines` or `dialer`.
"""
