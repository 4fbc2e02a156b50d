"""What may be called, when, and what an outcome means.

Pure logic only: no I/O, no clock reads, no imports of `dialer`, `lines` or `voice`.
Shared vocabulary (dispositions, number statuses, the phone-number value type) lives here
because this is the lowest package that owns it.
"""
