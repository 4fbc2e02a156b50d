"""The dialer's exception tree.

Every error the dialer raises on purpose is a `DialerError`. Errors from libraries
(SQLAlchemy, openpyxl, the csv module, pydantic, YAML) are translated once, where they
cross into our code (`raise ... from exc`), into one of these. Messages say what was
wrong and where, and never contain phone numbers or names (use a masked number or a row
number instead).

    DialerError
    ├── ConfigError          a YAML file that does not validate
    ├── IntakeError          a lead file that cannot be read as a whole
    │   ├── EncodingError        none of the supported encodings decodes it
    │   ├── NoPhoneColumnError   no column looks like phone numbers
    │   └── BrokenFileError      truncated, corrupt or not the format it claims
    ├── StoreError           the database refused or could not be reached
    ├── TelephonyError       the telephony backend could not start (a SIP port in use, ...)
    └── UsageError           a command was asked for something that cannot be done
"""

from __future__ import annotations


class DialerError(Exception):
    """Base of every error the dialer raises on purpose.

    `retryable` says whether trying the same thing again later may succeed
    (an unreachable database may come back; a malformed file will not fix itself).
    """

    retryable: bool = False


class ConfigError(DialerError):
    """A configuration file is invalid; the message names the file, line and key path."""


class IntakeError(DialerError):
    """A lead file cannot be read; nothing from it has been stored."""


class EncodingError(IntakeError):
    """The file's bytes decode as none of the supported encodings."""


class NoPhoneColumnError(IntakeError):
    """No column of the file could be identified as the phone column."""


class BrokenFileError(IntakeError):
    """The file is truncated, corrupt, or not in the format its name says."""


class StoreError(DialerError):
    """The store failed; `retryable` is True when the database was unreachable or busy."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class TelephonyError(DialerError):
    """The telephony backend could not start or broke down; `retryable` when trying again
    may work (a SIP port that is in use may be freed)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class UsageError(DialerError):
    """A command was asked for something that cannot be done (unknown campaign, bad flag)."""
