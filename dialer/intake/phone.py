"""One phone number typed by a person or sent by a system, as E.164 or a clear error."""

from __future__ import annotations

from dialer.errors import UsageError
from rules.phone import CleanFailure, NumberParser, PhoneInfo, clean_number


def parse_one(text: str, region: str) -> PhoneInfo:
    """A single number (national in `region`, or +E.164), or a UsageError saying why not
    (the message never repeats the number)."""
    cleaned = clean_number(text)
    if isinstance(cleaned, CleanFailure):
        raise UsageError(f"not a single phone number ({cleaned.value})")
    info = NumberParser(region).parse(cleaned)
    if not isinstance(info, PhoneInfo):
        raise UsageError(f"not a valid phone number in region {region} ({info.value}); "
                         "give it as +<country code><number> if it is from another region")
    return info
