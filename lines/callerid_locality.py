"""Where a phone number is, for local presence: same city, same province, same country.

`locality` asks phonenumbers' geocoder once per number (cached). What "same city" and "same
province or area" mean differs by country; see `Locality`.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Final

import phonenumbers
from phonenumbers import geocoder


@dataclass(frozen=True, slots=True)
class Locality:
    """Where a number is registered, as far as phonenumbers' geocoder knows.

    - China (+86): province and city from the Chinese description: "广东省深圳市" is
      广东省 / 深圳市, "新疆乌鲁木齐市" is 新疆 / 乌鲁木齐市; a municipality ("北京市") is its
      own province and city. Mobiles are placed by their 7-digit prefix, fixed lines by
      their area code.
    - NANP (+1): the area code stands for the city, the state or province for the province
      ("New York, NY" and "New York" both give NY).
    - Elsewhere, and numbers the geocoder cannot place (Chinese 170 virtual mobiles,
      toll-free numbers): only the country (its region code).
    """

    country: str | None
    province: str | None = None
    city: str | None = None

    @property
    def label(self) -> str:
        """A short description for status tables."""
        if self.province and self.city and self.province != self.city:
            return (
                f"{self.city}, {self.province}"
                if self.city.isdigit()
                else self.province + self.city
            )
        return self.city or self.province or self.country or "unknown"


class Closeness(enum.IntEnum):
    """How near a number is to a callee; lower is nearer."""

    SAME_CITY = 0
    SAME_PROVINCE = 1
    SAME_COUNTRY = 2
    ELSEWHERE = 3


def closeness(callee: Locality, number: Locality) -> Closeness:
    """How near `number` is to `callee` (an unknown part never matches)."""
    if callee.country is None or callee.country != number.country:
        return Closeness.ELSEWHERE
    if callee.province is None or callee.province != number.province:
        return Closeness.SAME_COUNTRY
    if callee.city is None or callee.city != number.city:
        return Closeness.SAME_PROVINCE
    return Closeness.SAME_CITY


# Countries placed below the country level, and the language their descriptions are read in.
_GEOCODER_LANGUAGE: Final = {86: "zh", 1: "en"}


@functools.lru_cache(maxsize=65536)
def locality(e164: str) -> Locality:
    """Where `e164` is (see `Locality`); `Locality(None)` if it does not parse."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return Locality(None)
    region = phonenumbers.region_code_for_number(number)
    if region is None or not phonenumbers.is_valid_number(number):
        return Locality(region)
    language = _GEOCODER_LANGUAGE.get(number.country_code or 0)
    if language is None:
        return Locality(region)
    description = geocoder.description_for_number(number, language)
    if description in ("", geocoder.country_name_for_number(number, language)):
        return Locality(region)  # placed in the country only
    if number.country_code == 86:
        return _china(region, description)
    return _nanp(region, str(number.national_number)[:3], description)


_CN_PROVINCE_PREFIXES: Final = ("内蒙古", "广西", "新疆", "宁夏", "西藏")


def _china(region: str, description: str) -> Locality:
    for suffix in ("省", "自治区"):
        head, found, city = description.partition(suffix)
        if found and city:
            return Locality(region, head + found, city)
    for prefix in _CN_PROVINCE_PREFIXES:
        if description.startswith(prefix) and len(description) > len(prefix):
            return Locality(region, prefix, description[len(prefix) :])
    return Locality(region, description, description)  # a municipality: 北京市


# State and province codes of the NANP geocoder's state-only descriptions ("New York").
# fmt: off
_NANP_STATES: Final = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Washington D.C.": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA",
    "Washington State": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Alberta": "AB", "British Columbia": "BC", "British Colombia": "BC", "Manitoba": "MB",
    "New Brunswick": "NB", "Newfoundland and Labrador": "NL", "Ontario": "ON", "Quebec": "QC",
    "Saskatchewan": "SK",
}
# fmt: on


def _nanp(region: str, npa: str, description: str) -> Locality:
    _, comma, state = description.rpartition(", ")
    return Locality(region, state if comma else _NANP_STATES.get(description, description), npa)
