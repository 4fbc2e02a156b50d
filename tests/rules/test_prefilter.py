"""The verdicts, their order, and the promise that a suppressed number is never accepted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rules.phone import NumberParser, NumberType
from rules.prefilter import REJECTIONS, Judge, StoreFacts, Verdict, screen

CN = NumberParser("CN")


NO_FACTS = StoreFacts()


def verdicts(cells: list[str], facts: StoreFacts = NO_FACTS, **judge_args: object) -> list[str]:
    judge = Judge(**judge_args)  # type: ignore[arg-type]
    return [judge.verdict(screen(i, raw, CN), facts).value for i, raw in enumerate(cells, 1)]


def test_each_verdict() -> None:
    cells = [
        "13512345678",  # accepted
        "  ",  # empty
        "N/A",  # unparseable
        "13512345678/13612345678",  # unparseable: two numbers
        "10512345678",  # invalid: no such mobile prefix
        "4001234567",  # type_not_allowed: a 400 number is shared cost
        "+86 135-1234-5678",  # duplicate of the first row
        "13612345678",  # suppressed
        "13712345678",  # known dead
    ]
    facts = StoreFacts(suppressed={"+8613612345678"}, dead={"+8613712345678"})
    assert verdicts(cells, facts) == [
        "accepted", "empty", "unparseable", "unparseable", "invalid", "type_not_allowed",
        "duplicate", "suppressed", "known_dead",
    ]


def test_existing_lead_is_a_duplicate() -> None:
    facts = StoreFacts(existing_leads={"+8613512345678"})
    assert verdicts(["13512345678"], facts) == ["duplicate"]


def test_verdicts_are_checked_in_the_documented_order() -> None:
    # A number that is a duplicate, suppressed and dead at once is reported as a duplicate;
    # suppressed beats known dead.
    facts = StoreFacts(existing_leads={"+8613512345678"}, suppressed={"+8613512345678"},
                       dead={"+8613512345678"})
    assert verdicts(["13512345678"], facts) == ["duplicate"]
    facts = StoreFacts(suppressed={"+8613512345678"}, dead={"+8613512345678"})
    assert verdicts(["13512345678"], facts) == ["suppressed"]
    assert [v.value for v in REJECTIONS] == [
        "empty", "unparseable", "invalid", "type_not_allowed", "duplicate", "suppressed",
        "known_dead",
    ]


def test_allowed_types_are_the_campaigns() -> None:
    landline = "010-88888888"
    assert verdicts([landline]) == ["accepted"]
    assert verdicts([landline], allowed_types={NumberType.MOBILE}) == ["type_not_allowed"]


FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")


@st.composite
def formatted_mobile(draw: st.DrawFn) -> tuple[str, str]:
    """A valid Chinese mobile number and one of the many ways a list may spell it."""
    prefix = draw(st.sampled_from(["135", "136", "138", "139", "150", "186", "188", "199"]))
    number = prefix + draw(st.text("0123456789", min_size=8, max_size=8))
    spelled = draw(st.sampled_from([
        number, "+86" + number, "86-" + number, "0086" + number, "17951" + number,
        f"{number[:3]} {number[3:7]} {number[7:]}", f"({number[:3]}) {number[3:7]}-{number[7:]}",
        number + ".0", number.translate(FULL_WIDTH), "tel:+86" + number, f"\u3000{number}\u3000",
        f"+86 {number[:3]}.{number[3:7]}.{number[7:]}",
    ]))
    return "+86" + number, spelled


@given(formatted_mobile(), st.booleans())
def test_a_suppressed_number_is_never_accepted(case: tuple[str, str], dead: bool) -> None:
    e164, spelled = case
    facts = StoreFacts(suppressed={e164}, dead={e164} if dead else set())
    assert verdicts([spelled], facts) == [Verdict.SUPPRESSED.value]


@given(formatted_mobile())
def test_every_spelling_reaches_the_same_number(case: tuple[str, str]) -> None:
    e164, spelled = case
    item = screen(1, spelled, CN)
    assert item.info is not None
    assert item.info.e164 == e164
