"""Cleaning rules, and the parser's fast path against plain phonenumbers."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import carrier, timezone

from rules.phone import (
    CleanFailure,
    NumberParser,
    NumberType,
    ParseFailure,
    PhoneInfo,
    clean_number,
    mask,
)


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("13512345678", "13512345678"),
        ("  13512345678\t", "13512345678"),
        ("\u3000135 1234 5678\u3000", "13512345678"),  # ideographic spaces, outside and inside
        ("１３５１２３４５６７８", "13512345678"),  # full-width digits
        ("＋８６１３５１２３４５６７８", "+8613512345678"),  # full-width plus sign
        ("tel:+8613512345678", "+8613512345678"),
        ("TEL: 135-1234-5678", "13512345678"),
        ("(010) 8888.8888", "01088888888"),
        ("13512345678.0", "13512345678"),  # Excel float artefact
        ("1.5012345678E+10", "15012345678"),  # Excel scientific notation
        ("1.3512345678e10", "13512345678"),
        ("86-13512345678", "+8613512345678"),  # a bare country code with a separator
        ("86 135 1234 5678", "+8613512345678"),
        ("\u200b13512345678\ufeff", "13512345678"),  # zero-width characters
        ("+1 (650) 253-0000", "+16502530000"),
    ],
)
def test_cleaning_rules(raw: str, cleaned: str) -> None:
    assert clean_number(raw) == cleaned


@pytest.mark.parametrize("raw", ["", "   ", "\u3000\u3000", "tel:", "- ( ) .", "\ufeff"])
def test_nothing_left_is_empty(raw: str) -> None:
    assert clean_number(raw) is CleanFailure.EMPTY


@pytest.mark.parametrize(
    "raw",
    [
        "13512345678/13612345678",
        "13512345678,13612345678",
        "13512345678；13612345678",  # full-width semicolon
        "13512345678、13612345678",
        "13512345678 13612345678",
        "010-88888888 / 021-66666666",
    ],
)
def test_several_numbers_in_one_cell(raw: str) -> None:
    assert clean_number(raw) is CleanFailure.MULTIPLE


def test_excel_exponent_that_is_not_whole_is_left_alone() -> None:
    assert clean_number("1.5E+2") == "150"
    assert clean_number("1.55555E+2") == "155555E+2"  # not integral: phonenumbers judges it


def reference(cleaned: str, region: str) -> PhoneInfo | ParseFailure:
    """The plain phonenumbers pipeline the parser must agree with."""
    try:
        number = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException:
        return ParseFailure.UNPARSEABLE
    if not phonenumbers.is_valid_number(number):
        return ParseFailure.INVALID
    kind = phonenumbers.number_type(number)
    return PhoneInfo(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        number_type=next(t for t in NumberType if t.pn_type == kind),
        region=phonenumbers.region_code_for_number(number),
        carrier=carrier.name_for_number(number, "en"),
        timezones=tuple(timezone.time_zones_for_number(number)),
    )


REGIONS = ["CN", "US", "CA", "GB", "HK", "DE", "IT", "IN", "SG", "JP"]
PREFIXES = ["", "+", "+86", "86", "0086", "0", "1", "17951", "+1", "+44", "0044", "00", "01"]


def _candidates(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        prefix = rng.choice(PREFIXES)
        body = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 14)))
        if rng.random() < 0.5:  # bias towards plausible Chinese mobiles
            body = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
        out.append(prefix + body)
    return out


@pytest.mark.parametrize("region", REGIONS)
def test_parser_agrees_with_phonenumbers_on_random_input(region: str) -> None:
    parser = NumberParser(region)
    rng = random.Random(region)
    for candidate in _candidates(rng, 6000):
        assert parser.parse(candidate) == reference(candidate, region), candidate


@settings(max_examples=300, deadline=None)
@given(
    region=st.sampled_from(REGIONS),
    prefix=st.sampled_from(PREFIXES),
    body=st.text(alphabet="0123456789", min_size=1, max_size=17),
)
def test_parser_agrees_with_phonenumbers_property(region: str, prefix: str, body: str) -> None:
    assert NumberParser(region).parse(prefix + body) == reference(prefix + body, region)


def test_parser_reports_type_region_carrier_and_zones() -> None:
    info = NumberParser("CN").parse("13512345678")
    assert isinstance(info, PhoneInfo)
    assert info.e164 == "+8613512345678"
    assert info.number_type is NumberType.MOBILE
    assert info.region == "CN"
    assert info.carrier == "China Mobile"
    assert info.timezones == ("Asia/Shanghai",)


def test_carrier_select_prefix_is_stripped_by_phonenumbers() -> None:
    info = NumberParser("CN").parse("1795113512345678")
    assert isinstance(info, PhoneInfo)
    assert info.e164 == "+8613512345678"


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown region"):
        NumberParser("XX")


def test_mask_keeps_only_country_code_and_last_digits() -> None:
    assert mask("+8613512345678") == "+86*********78"
    assert "1234" not in mask("+8613512345678")
