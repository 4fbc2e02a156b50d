"""Idempotent requests: answers kept with the write they describe, replayed, per principal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from dialer.config import parse_campaign
from dialer.errors import UsageError
from dialer.intake.api import LeadIn, add_leads
from dialer.store import Store
from dialer.store.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyConflict,
    StoredResponse,
    find,
    hold,
    purge,
    remember,
    request_digest,
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
BODY = b'{"leads": [{"phone": "13800138000"}]}'
DIGEST = request_digest("POST", "/v1/campaigns/shop/leads", BODY)
SHOP = parse_campaign({"name": "shop", "region": "CN", "compliance": "cn-marketing"})


def stored_answer(store: Store, principal: str = "key:shop", key: str = "k-1"
                  ) -> StoredResponse | None:
    with store.read() as uow:
        return find(uow, principal, key)


def save(store: Store, principal: str = "key:shop", key: str = "k-1", digest: str = DIGEST,
         status: int = 201, body: str = '{"accepted": 1}', now: datetime = NOW) -> None:
    with store.write() as uow:
        remember(uow, principal, key, digest, status, body, now)


def lead_count(store: Store) -> int:
    with store.read() as uow:
        campaign_id = uow.campaign_id("shop")
        return 0 if campaign_id is None else uow.count_leads(campaign_id)


def test_a_request_digest_covers_method_path_and_body() -> None:
    assert request_digest("post", "/v1/campaigns/shop/leads", BODY) == DIGEST
    assert len(DIGEST) == 64
    others = {request_digest("PUT", "/v1/campaigns/shop/leads", BODY),
              request_digest("POST", "/v1/campaigns/spring/leads", BODY),
              request_digest("POST", "/v1/campaigns/shop/leads", BODY + b" "),
              request_digest("POST", "/v1/campaigns/shop/leads?dry_run=1", BODY)}
    assert DIGEST not in others
    assert len(others) == 4


def test_an_answer_is_found_again_with_its_request_digest(store: Store) -> None:
    assert stored_answer(store) is None
    save(store, body='{"accepted": 1, "名": "✓"}')
    answer = stored_answer(store)
    assert answer == StoredResponse(request_sha256=DIGEST, status_code=201,
                                    body='{"accepted": 1, "名": "✓"}', created_at=NOW)


def test_a_key_reused_for_another_request_shows_a_different_digest(store: Store) -> None:
    save(store)
    other = request_digest("POST", "/v1/campaigns/shop/leads", b'{"leads": []}')
    answer = stored_answer(store)
    assert answer is not None
    assert answer.request_sha256 == DIGEST != other  # the API answers 422


def test_keys_are_per_principal(store: Store) -> None:
    save(store, principal="key:shop", status=201, body="shop")
    assert stored_answer(store, principal="key:crm") is None
    save(store, principal="key:crm", status=200, body="crm")  # the same key, no conflict
    shop, crm = stored_answer(store, "key:shop"), stored_answer(store, "key:crm")
    assert shop is not None
    assert crm is not None
    assert (shop.status_code, shop.body, crm.status_code, crm.body) == (201, "shop", 200, "crm")


def add_and_remember(store: Store, phone: str, body: str, *, fail: bool = False) -> None:
    """One API write: a lead added and its answer kept, in one transaction."""
    with store.write() as uow:
        add_leads(uow, SHOP, [LeadIn(phone=phone)], source="api", now=NOW, actor="t")
        remember(uow, "key:shop", "k-1", DIGEST, 201, body, NOW)
        if fail:
            raise RuntimeError("crash before commit")


def test_a_second_answer_for_a_key_is_a_conflict_and_undoes_its_write(store: Store) -> None:
    add_and_remember(store, "13800138000", "first")
    with pytest.raises(IdempotencyConflict) as caught:
        add_and_remember(store, "13912345678", "second")
    assert isinstance(caught.value, UsageError)
    assert caught.value.retryable
    for secret in ("k-1", "key:shop"):
        assert secret not in str(caught.value)
    assert lead_count(store) == 1
    answer = stored_answer(store)
    assert answer is not None
    assert answer.body == "first"


def test_a_rolled_back_write_keeps_no_answer(store: Store) -> None:
    with pytest.raises(RuntimeError, match="crash"):
        add_and_remember(store, "13800138000", "{}", fail=True)
    assert stored_answer(store) is None
    assert lead_count(store) == 0


def test_purge_forgets_answers_older_than_the_cutoff(store: Store) -> None:
    save(store, key="old", now=NOW - timedelta(days=2))
    save(store, key="edge", now=NOW - timedelta(days=1))
    save(store, key="new", now=NOW)
    with store.write() as uow:
        assert purge(uow, NOW - timedelta(days=1)) == 1
    assert stored_answer(store, key="old") is None
    assert stored_answer(store, key="edge") is not None
    with store.write() as uow:
        assert purge(uow, NOW + timedelta(seconds=1)) == 2
        with pytest.raises(ValueError, match="aware"):
            purge(uow, datetime(2026, 11, 24))


@pytest.mark.parametrize(("principal", "key"), [("", "k"), ("p", ""),
                                                ("p", "k" * (MAX_KEY_LENGTH + 1))])
def test_principal_and_key_must_fit_the_table(store: Store, principal: str, key: str) -> None:
    with store.write() as uow:
        with pytest.raises(UsageError, match="1-200 characters"):
            find(uow, principal, key)
        with pytest.raises(UsageError, match="1-200 characters"):
            remember(uow, principal, key, DIGEST, 201, "{}", NOW)
    save(store, key="k" * MAX_KEY_LENGTH)
    assert stored_answer(store, key="k" * MAX_KEY_LENGTH) is not None


def run_in_thread(work: dict[str, object], name: str,
                  body: Callable[[], object]) -> threading.Thread:
    """Run `body()` in a thread, keeping its result or exception in `work[name]`."""

    def target() -> None:
        try:
            work[name] = body()
        except Exception as exc:  # the test thread inspects it
            work[name] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_a_concurrent_twin_waits_for_the_first_and_replays_its_answer(store: Store) -> None:
    holding, release = threading.Event(), threading.Event()
    work: dict[str, object] = {}

    def first() -> None:
        with store.write() as uow:
            hold(uow, "key:shop", "k-1")
            assert find(uow, "key:shop", "k-1") is None
            holding.set()
            release.wait(10)
            remember(uow, "key:shop", "k-1", DIGEST, 201, "first", NOW)

    def twin() -> StoredResponse | None:
        with store.write() as uow:
            hold(uow, "key:shop", "k-1")
            return find(uow, "key:shop", "k-1")

    first_thread = run_in_thread(work, "first", first)
    assert holding.wait(10)
    twin_thread = run_in_thread(work, "twin", twin)
    time.sleep(0.3)
    assert twin_thread.is_alive()  # waiting for the first request's transaction
    release.set()
    first_thread.join(10)
    twin_thread.join(10)
    assert work["first"] is None
    answer = work["twin"]
    assert isinstance(answer, StoredResponse)
    assert answer.body == "first"


def test_a_concurrent_duplicate_answer_is_a_conflict_not_an_integrity_error(
    store: Store,
) -> None:
    written, release = threading.Event(), threading.Event()
    work: dict[str, object] = {}

    def first() -> None:
        with store.write() as uow:
            remember(uow, "key:shop", "k-1", DIGEST, 201, "first", NOW)
            written.set()
            release.wait(10)

    def twin() -> None:
        with store.write() as uow:
            remember(uow, "key:shop", "k-1", DIGEST, 201, "twin", NOW)

    first_thread = run_in_thread(work, "first", first)
    assert written.wait(10)
    twin_thread = run_in_thread(work, "twin", twin)
    time.sleep(0.3)
    release.set()
    first_thread.join(10)
    twin_thread.join(10)
    assert work["first"] is None
    assert isinstance(work["twin"], IdempotencyConflict)
    answer = stored_answer(store)
    assert answer is not None
    assert answer.body == "first"
