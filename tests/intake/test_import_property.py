"""Property: whatever the formatting, a suppressed number never becomes a lead."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialer.cli.targets import parse_one
from dialer.intake.service import IntakeOptions, import_file
from dialer.store import SuppressionScope, open_store

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")
SPELLINGS = [
    lambda n: n,
    lambda n: "+86" + n,
    lambda n: "86-" + n,
    lambda n: "0086" + n,
    lambda n: "17951" + n,
    lambda n: f"{n[:3]} {n[3:7]} {n[7:]}",
    lambda n: f"{n[:3]}-{n[3:7]}-{n[7:]}",
    lambda n: n + ".0",
    lambda n: f"{int(n) / 1e10:.10f}".rstrip("0") + "E+10",
    lambda n: n.translate(FULL_WIDTH),
    lambda n: "tel:+86" + n,
    lambda n: f"\u3000{n}\u3000",
]

mobiles = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["135", "136", "139", "150", "158", "186", "188", "199"]),
    st.text("0123456789", min_size=8, max_size=8),
)
rows = st.lists(
    st.tuples(mobiles, st.integers(0, len(SPELLINGS) - 1), st.booleans()),
    min_size=1, max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows, suppress_spelling=st.integers(0, len(SPELLINGS) - 1),
       scope=st.sampled_from(list(SuppressionScope)))
def test_no_suppressed_number_is_ever_imported(
    rows: list[tuple[str, int, bool]], suppress_spelling: int, scope: SuppressionScope
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/p.db")
        try:
            suppressed = set()
            with store.write() as uow:
                for number, _, suppress in rows:
                    if suppress:  # suppressed as typed in one spelling, imported in another
                        e164 = parse_one(SPELLINGS[suppress_spelling](number), "CN").e164
                        suppressed.add(e164)
                        uow.add_suppression(e164, scope=scope, campaign="c" if scope ==
                                            SuppressionScope.CAMPAIGN else None,
                                            reason="opt-out", actor="t", now=NOW)
            path = Path(tmp) / "leads.csv"
            lines = ["phone"] + [f'"{SPELLINGS[s](n)}"' for n, s, _ in rows]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            with store.write() as uow:
                summary = import_file(uow, path, campaign="c", source="v",
                                      options=IntakeOptions(workers=1), now=NOW, actor="t")
            with store.read() as uow:
                leads = {lead.e164 for lead in uow.leads_sample(uow.campaign_id("c") or 0, 100)}
        finally:
            store.close()
    assert not leads & suppressed
    assert summary.accepted == len(leads)
    assert leads | suppressed == {"+86" + number for number, _, _ in rows}
