"""Running the pre-filter over a whole lead table, on every core, in file order.

The main process reads the file and judges rows in order; worker processes do the
expensive part (cleaning and phonenumbers) on chunks of phone cells. At most a few chunks
are in flight, so memory stays flat whatever the file size. Small files are screened in
process: starting workers costs more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from typing import Protocol

from rules.phone import NumberParser, NumberType, PhoneInfo
from rules.prefilter import Judge, Screened, StoreFacts, Verdict, screen

CHUNK_ROWS = 10_000
PARALLEL_MIN_BYTES = 2_000_000  # below this, in-process screening is faster
_IN_FLIGHT_PER_WORKER = 2

Row = tuple[int, list[str]]  # (data row number from 1, cells)
# What crosses the process boundary for one row: plain tuples pickle fast.
_Wire = tuple[str | None, str, str, str | None, str, tuple[str, ...]] | tuple[str]


@dataclass(frozen=True, slots=True)
class ScreenedRow:
    """A row of the table after screening, with the cells it came with."""

    screened: Screened
    cells: list[str]


def default_workers() -> int:
    """Worker processes for screening: one per core the process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def screen_rows(
    rows: Iterable[Row],
    *,
    phone_index: int,
    region: str,
    workers: int,
    on_chunk: Callable[[], None] | None = None,
) -> Iterator[list[ScreenedRow]]:
    """Screen `rows` chunk by chunk, yielding chunks in file order.

    `workers` <= 1 screens in this process. `on_chunk` is called after each chunk is
    read (for progress display).
    """
    chunks = _chunked(rows, phone_index, on_chunk)
    if workers <= 1:
        parser = NumberParser(region)
        for chunk in chunks:
            yield [ScreenedRow(screen(n, raw, parser), cells) for n, raw, cells in chunk]
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(region,)) as pool:
        yield from _screen_in_pool(pool, chunks, workers * _IN_FLIGHT_PER_WORKER)


def _chunked(
    rows: Iterable[Row], phone_index: int, on_chunk: Callable[[], None] | None
) -> Iterator[list[tuple[int, str, list[str]]]]:
    chunk: list[tuple[int, str, list[str]]] = []
    for number, cells in rows:
        chunk.append((number, cells[phone_index], cells))
        if len(chunk) >= CHUNK_ROWS:
            if on_chunk is not None:
                on_chunk()
            yield chunk
            chunk = []
    if chunk:
        if on_chunk is not None:
            on_chunk()
        yield chunk


def _screen_in_pool(
    pool: Pool, chunks: Iterator[list[tuple[int, str, list[str]]]], window: int
) -> Iterator[list[ScreenedRow]]:
    pending: deque[tuple[list[tuple[int, str, list[str]]], AsyncResult[list[_Wire]]]] = deque()
    for chunk in chunks:
        raws = [raw for _, raw, _ in chunk]
        pending.append((chunk, pool.apply_async(_screen_chunk, (raws,))))
        if len(pending) >= window:
            yield _unwire(*pending.popleft())
    while pending:
        yield _unwire(*pending.popleft())


def _unwire(
    chunk: list[tuple[int, str, list[str]]], result: AsyncResult[list[_Wire]]
) -> list[ScreenedRow]:
    out = []
    for (number, raw, cells), wire in zip(chunk, result.get(), strict=True):
        if len(wire) == 1:
            screened = Screened(number, raw, None, Verdict(wire[0]))
        else:
            _, e164, kind, region, carrier, zones = wire
            info = PhoneInfo(e164, NumberType(kind), region, carrier, zones)
            screened = Screened(number, raw, info, None)
        out.append(ScreenedRow(screened, cells))
    return out


_worker_parser: NumberParser | None = None


def _init_worker(region: str) -> None:
    global _worker_parser
    _worker_parser = NumberParser(region)


def _screen_chunk(raws: Sequence[str]) -> list[_Wire]:
    assert _worker_parser is not None, "worker not initialised"
    out: list[_Wire] = []
    for raw in raws:
        item = screen(0, raw, _worker_parser)
        if item.rejection is not None:
            out.append((item.rejection.value,))
        else:
            assert item.info is not None
            info = item.info
            out.append(
                (None, info.e164, info.number_type.value, info.region, info.carrier, info.timezones)
            )
    return out


class FactsSource(Protocol):
    """What the store knows about numbers, asked one chunk at a time.

    - `facts` is called with the E.164 numbers of one chunk that passed screening and the
      type check; it returns which of them are existing leads, suppressed, or known dead.
    - It reads only; it never changes the store.
    """

    def facts(self, e164s: Collection[str]) -> StoreFacts: ...


@dataclass(frozen=True, slots=True)
class RowVerdict:
    """The pre-filter's final word on one row."""

    row: int
    raw: str
    verdict: Verdict
    info: PhoneInfo | None
    cells: list[str]


def judge_chunks(
    chunks: Iterable[list[ScreenedRow]], judge: Judge, facts: FactsSource | None
) -> Iterator[list[RowVerdict]]:
    """Final verdicts in file order, asking `facts` once per chunk."""
    for chunk in chunks:
        candidates = {
            row.screened.info.e164
            for row in chunk
            if row.screened.info is not None
            and row.screened.info.number_type in judge.allowed_types
        }
        known = facts.facts(candidates) if facts is not None and candidates else StoreFacts()
        yield [
            RowVerdict(
                row.screened.row,
                row.screened.raw,
                judge.verdict(row.screened, known),
                row.screened.info,
                row.cells,
            )
            for row in chunk
        ]
