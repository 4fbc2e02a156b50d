"""Running the pre-filter over a whole lead table, on every core, in file order.

The main process reads the file and gives final verdicts in order (they depend on earlier
rows and on the store); worker processes do the expensive, order-free part (cleaning,
phonenumbers, and for `check --json` rendering the line) on chunks of rows. At most a few
chunks are in flight, so memory stays flat whatever the file size. Small files are done
in process: starting workers costs more than it saves.

Two shapes of output:
- `screen_rows` gives objects (for `leads import`, which needs every row's cells);
- `check_lines` gives finished JSON lines (for `leads check --json`).
"""

from __future__ import annotations

import gc
import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Set
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol, TypeVar

from dialer.errors import IntakeError
from dialer.intake import jsonl
from rules.phone import NumberParser, NumberType, PhoneInfo
from rules.prefilter import Judge, Screened, StoreFacts, Verdict, screen

CHUNK_ROWS = 10_000
PARALLEL_MIN_BYTES = 2_000_000  # below this, in-process screening is faster
_IN_FLIGHT_PER_WORKER = 2

Row = tuple[int, list[str]]  # (data row number from 1, cells)
Pairs = list[tuple[int, str]]  # (row number, phone cell) of each row of a chunk
# What crosses the process boundary: plain tuples and strings pickle fast.
_Info = tuple[str, str, str | None, str, tuple[str, ...]]  # e164, type, region, carrier, zones
_Screen = tuple[str | None, _Info | None]  # (rejection, info)
_Check = tuple[str | None, str | None, jsonl.Parts]  # (rejection, candidate e164, line parts)
T = TypeVar("T")


class FactsSource(Protocol):
    """What the store knows about numbers, asked one chunk at a time.

    - `facts` is called with the E.164 numbers of one chunk that passed screening and the
      type check; it returns which of them are existing leads, suppressed, or known dead.
    - It reads only; it never changes the store.
    """

    def facts(self, e164s: Collection[str]) -> StoreFacts: ...


@dataclass(frozen=True, slots=True)
class RowVerdict:
    """The pre-filter's final word on one row, with the cells it came with."""

    row: int
    raw: str
    verdict: Verdict
    info: PhoneInfo | None
    cells: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Screening:
    """How to screen: the default region, the allowed types, and how many processes."""

    region: str
    allowed_types: Set[NumberType]
    workers: int


def default_workers() -> int:
    """Worker processes for screening: one per core the process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def screen_rows(
    rows: Iterable[Row],
    phone_index: int,
    how: Screening,
    facts: FactsSource | None,
    on_chunk: Callable[[], None] | None = None,
) -> Iterator[list[RowVerdict]]:
    """Every row's final verdict, with its cells, chunk by chunk in file order."""
    judge = Judge(how.allowed_types)
    kept: deque[list[list[str]]] = deque()  # the cells of the chunks in flight
    chunks = _chunked(rows, phone_index, on_chunk, kept)
    for pairs, wires in _ordered(chunks, _screen_chunk, how):
        cells = kept.popleft()
        screened = [
            _screened(number, raw, wire)
            for (number, raw), wire in zip(pairs, wires, strict=True)
        ]
        known = _facts_for(facts, {s.info.e164 for s in screened if s.info is not None
                                   and s.info.number_type in judge.allowed_types})
        yield [
            RowVerdict(item.row, item.raw, judge.verdict(item, known), item.info, row_cells)
            for item, row_cells in zip(screened, cells, strict=True)
        ]


def check_lines(
    rows: Iterable[Row],
    phone_index: int,
    how: Screening,
    facts: FactsSource | None,
    on_chunk: Callable[[], None] | None = None,
) -> Iterator[tuple[list[str], list[Verdict]]]:
    """Every row's `leads check --json` line and verdict, chunk by chunk in file order."""
    judge = Judge(how.allowed_types)
    verdicts_by_value = {v.value: v for v in Verdict}
    for _, wires in _ordered(_chunked(rows, phone_index, on_chunk, None), _check_chunk, how):
        known = _facts_for(facts, {e164 for _, e164, _ in wires if e164 is not None})
        lines, verdicts = [], []
        for rejection, e164, parts in wires:
            if rejection is not None:
                verdict = verdicts_by_value[rejection]
            else:
                assert e164 is not None
                verdict = judge.verdict_for_number(e164, known)
            lines.append(jsonl.join(parts, verdict))
            verdicts.append(verdict)
        yield lines, verdicts


def _facts_for(facts: FactsSource | None, candidates: set[str]) -> StoreFacts:
    return facts.facts(candidates) if facts is not None and candidates else StoreFacts()


def _chunked(
    rows: Iterable[Row],
    phone_index: int,
    on_chunk: Callable[[], None] | None,
    kept: deque[list[list[str]]] | None,
) -> Iterator[Pairs]:
    """(row, phone cell) pairs in chunks; each chunk's cells go to `kept` if it is given."""
    iterator = iter(rows)
    while True:
        if kept is None:
            pairs = [(n, cells[phone_index]) for n, cells in itertools.islice(iterator, CHUNK_ROWS)]
        else:
            batch = list(itertools.islice(iterator, CHUNK_ROWS))
            kept.append([cells for _, cells in batch])
            pairs = [(n, cells[phone_index]) for n, cells in batch]
        if not pairs:
            if kept is not None:
                kept.pop()
            return
        if on_chunk is not None:
            on_chunk()
        yield pairs


def _ordered(
    chunks: Iterator[Pairs], work: Callable[[Pairs], list[T]], how: Screening
) -> Iterator[tuple[Pairs, list[T]]]:
    """`work` applied to each chunk, results in chunk order."""
    if how.workers <= 1:
        _init_worker(how.region, frozenset(how.allowed_types), own_process=False)
        for chunk in chunks:
            yield chunk, work(chunk)
        return
    context = multiprocessing.get_context("spawn")
    initargs = (how.region, frozenset(how.allowed_types))
    try:
        with ProcessPoolExecutor(how.workers, mp_context=context, initializer=_init_worker,
                                 initargs=initargs) as pool:
            pending: deque[tuple[Pairs, Future[list[T]]]] = deque()
            for chunk in chunks:
                pending.append((chunk, pool.submit(work, chunk)))
                if len(pending) >= how.workers * _IN_FLIGHT_PER_WORKER:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
    except BrokenProcessPool as exc:
        raise IntakeError(
            "a screening worker process died (out of memory or killed?); nothing was "
            "stored; retry, or use --workers 1"
        ) from exc


def _screened(number: int, raw: str, wire: _Screen) -> Screened:
    rejection, info = wire
    if rejection is not None:
        return Screened(number, raw, None, _VERDICTS[rejection])
    assert info is not None
    e164, kind, region, carrier, zones = info
    return Screened(number, raw, PhoneInfo(e164, _TYPES[kind], region, carrier, zones), None)


_VERDICTS = {v.value: v for v in Verdict}
_TYPES = {t.value: t for t in NumberType}

# Per-process state of a worker (or of the main process when it screens in process).
_parser: NumberParser | None = None
_allowed: frozenset[NumberType] = frozenset()


def _init_worker(region: str, allowed: frozenset[NumberType], own_process: bool = True) -> None:
    global _parser, _allowed
    if own_process:
        # Screening allocates millions of short-lived, acyclic objects; the default gen-0
        # threshold (700) makes the cycle collector run thousands of times for nothing.
        gc.set_threshold(100_000, 50, 100)
    if _parser is None or _parser.region != region:
        _parser = NumberParser(region)
    _allowed = allowed


def _screen_chunk(rows: Pairs) -> list[_Screen]:
    assert _parser is not None, "worker not initialised"
    out: list[_Screen] = []
    for number, raw in rows:
        item = screen(number, raw, _parser)
        if item.info is None:
            assert item.rejection is not None
            out.append((item.rejection.value, None))
        else:
            info = item.info
            out.append((None, (info.e164, info.number_type.value, info.region, info.carrier,
                               info.timezones)))
    return out


def _check_chunk(rows: Pairs) -> list[_Check]:
    assert _parser is not None, "worker not initialised"
    out: list[_Check] = []
    for number, raw in rows:
        item = screen(number, raw, _parser)
        parts = jsonl.parts(number, raw, item.info)
        if item.rejection is not None:
            out.append((item.rejection.value, None, parts))
        elif item.info is not None and item.info.number_type not in _allowed:
            out.append((Verdict.TYPE_NOT_ALLOWED.value, None, parts))
        else:
            assert item.info is not None
            out.append((None, item.info.e164, parts))
    return out
