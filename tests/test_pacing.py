"""A write in the serving process steps aside for waiting reads, and is never starved."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from graph import pacing
from graph.errors import ConfigError
from service.pacing import PACER, LoopWriter, ReadsFirst, WritePool
from service.settings import Settings


def busy_write(gate: ReadsFirst, seconds: float) -> int:
    """A writer's loop that may step aside at every step; returns how many steps it made."""
    steps = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        gate.gate()
        steps += 1
    return steps


def test_a_write_alone_never_pauses() -> None:
    gate = ReadsFirst(share=0.25, budget=0.001)
    busy_write(gate, 0.05)
    assert gate.paused == 0


def test_a_write_steps_aside_while_a_read_waits_and_still_goes_on() -> None:
    gate = ReadsFirst(share=0.25, budget=0.001)
    gate.in_flight = 1  # a read being served
    steps = busy_write(gate, 0.1)
    assert steps > 0
    # Three parts pause to one part run: most of the time went to the read.
    assert gate.paused >= 0.05


def test_other_writes_and_the_loop_itself_are_not_waited_for() -> None:
    gate = ReadsFirst(share=0.25, budget=0.001)
    gate.in_flight = 2  # two ingest requests, one writing, one queued for the writer
    with gate.writing(), gate.writing():
        busy_write(gate, 0.03)
    assert gate.paused == 0
    gate.in_flight = 1
    gate.loop_thread = threading.get_ident()  # a point reached on the loop's thread
    busy_write(gate, 0.03)
    assert gate.paused == 0


def test_a_writer_share_of_one_turns_pacing_off() -> None:
    gate = ReadsFirst(share=1.0)
    gate.in_flight = 1
    busy_write(gate, 0.03)
    assert gate.paused == 0


@pytest.mark.parametrize("raw", ["0", "1.5", "half", "-0.2"])
def test_a_bad_writer_share_is_a_config_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("IDGRAPH_WRITER_SHARE", raw)
    with pytest.raises(ConfigError, match="IDGRAPH_WRITER_SHARE"):
        Settings()


def test_the_writer_share_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDGRAPH_WRITER_SHARE", "0.5")
    assert Settings().writer_share == 0.5


def test_a_pause_ends_once_the_reads_are_done() -> None:
    gate = ReadsFirst(share=0.02, budget=0.001, grace=0.001)  # pauses of up to 49 ms
    gate.in_flight = 1
    done = threading.Timer(0.003, lambda: setattr(gate, "in_flight", 0))
    started = time.perf_counter()
    done.start()
    time.sleep(0.002)  # the writer's turn is used up
    gate.gate()
    took = time.perf_counter() - started
    done.join()
    assert 0.003 <= took < 0.03  # the read's 3 ms and the grace, not the whole 49 ms


def test_a_read_that_follows_at_once_keeps_the_write_paused() -> None:
    gate = ReadsFirst(share=0.1, budget=0.001, grace=0.003)  # pauses of up to 9 ms
    gate.in_flight = 1

    def reads() -> None:
        time.sleep(0.002)
        gate.in_flight = 0  # one read done ...
        time.sleep(0.0005)
        gate.in_flight = 1  # ... and the client's next one, within the grace

    client = threading.Thread(target=reads)
    time.sleep(0.002)
    started = time.perf_counter()
    client.start()
    gate.gate()
    took = time.perf_counter() - started
    client.join()
    assert took >= 0.008  # the whole pause: the write did not cut in between the two


def test_while_reads_keep_coming_a_write_still_gets_its_share() -> None:
    gate = ReadsFirst(share=0.25, budget=0.001, grace=0.0)
    stop = threading.Event()

    def reads() -> None:  # reads back to back, each done after 1 ms
        while not stop.is_set():
            gate.in_flight = 1
            time.sleep(0.001)
            gate.in_flight = 0

    client = threading.Thread(target=reads)
    client.start()
    try:
        started = time.perf_counter()
        busy_write(gate, 0.3)
        ran = time.perf_counter() - started - gate.paused
    finally:
        stop.set()
        client.join()
    assert ran >= 0.25 * 0.3 * 0.8


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="threads have priorities on Linux")
def test_writes_run_on_threads_of_lower_priority() -> None:
    pool = WritePool(nice=5)
    try:
        mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        theirs = asyncio.run(
            pool.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        )
    finally:
        asyncio.run(pool.close())
    assert theirs == min(19, mine + 5)


@pytest.mark.parametrize("raw", ["-1", "20", "low"])
def test_a_bad_writer_nice_is_a_config_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("IDGRAPH_WRITER_NICE", raw)
    with pytest.raises(ConfigError, match="IDGRAPH_WRITER_NICE"):
        Settings()


# --- writes on the event loop ----------------------------------------------------------


@pytest.fixture
def paced() -> Iterator[None]:
    pacing.install(PACER)
    yield
    pacing.install(None)


def points_for(seconds: float, log: list[str] | None = None) -> int:
    """A write of pure Python with a point every few microseconds; returns its steps."""
    steps = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pacing.step_aside()
        steps += 1
    if log is not None:
        log.append("write done")
    return steps


def test_a_loop_write_gives_the_loop_back_between_turns(paced: None) -> None:
    async def scenario() -> tuple[int, list[str]]:
        writer = LoopWriter(ReadsFirst(share=0.25, budget=0.001), turn=0.0005)
        log: list[str] = []

        async def read() -> None:
            await asyncio.sleep(0.01)  # lands while the write runs
            log.append("read done")

        reading = asyncio.ensure_future(read())
        steps = await writer.run(lambda: points_for(0.1, log))
        await reading
        await writer.close()
        return steps, log

    steps, log = asyncio.run(scenario())
    assert steps > 0
    assert log == ["read done", "write done"]  # the read did not wait for the write's end


def test_while_a_read_is_in_flight_the_write_makes_way_and_still_goes_on(paced: None) -> None:
    async def scenario() -> tuple[int, float]:
        first = ReadsFirst(share=0.25, budget=0.001)
        writer = LoopWriter(first, turn=0.0005)
        first.in_flight = 1  # a read being served throughout
        steps = await writer.run(lambda: points_for(0.1))
        await writer.close()
        return steps, first.paused

    steps, paused = asyncio.run(scenario())
    assert steps > 0
    # Three parts pause to one part run: most of the time went to the read.
    assert paused >= 0.05


def test_beside_reads_that_hold_the_loop_long_a_loop_write_still_gets_its_share(
    paced: None,
) -> None:
    """Many clients' reads make each round of the loop long; the write's turns grow to match."""

    def write(seconds: float) -> float:
        ran, end = 0.0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            pacing.step_aside()
            began = time.perf_counter()
            while time.perf_counter() - began < 0.00002:
                pass
            ran += time.perf_counter() - began
        return ran

    async def scenario() -> tuple[float, float]:
        first = ReadsFirst(share=0.25, budget=0.001)
        writer = LoopWriter(first, turn=0.00025)
        stop = False

        async def reads() -> None:  # a round of the loop serves 3 ms of reads
            first.in_flight += 1
            while not stop:
                began = time.perf_counter()
                while time.perf_counter() - began < 0.003:
                    pass
                await asyncio.sleep(0)
            first.in_flight -= 1

        reading = asyncio.ensure_future(reads())
        await asyncio.sleep(0)
        started = time.perf_counter()
        ran = await writer.run(lambda: write(0.3))
        took = time.perf_counter() - started
        stop = True
        await reading
        await writer.close()
        return ran, took

    ran, took = asyncio.run(scenario())
    # A quarter of the time, give or take: a fixed turn of 0.25 ms after each round of
    # 3 ms (or three) would give it under a tenth.
    assert ran >= 0.15 * took


def test_blocking_calls_run_off_the_loop_and_their_errors_reach_the_write(paced: None) -> None:
    def write() -> tuple[int, str]:
        elsewhere = pacing.blocking(threading.get_ident)
        try:
            pacing.blocking(int, "not a number")
        except ValueError as exc:
            return elsewhere, str(exc)
        raise AssertionError("the call's error did not reach the write")

    async def scenario() -> tuple[int, int, str]:
        writer = LoopWriter(ReadsFirst(share=0.25))
        elsewhere, error = await writer.run(write)
        await writer.close()
        return threading.get_ident(), elsewhere, error

    loop_thread, call_thread, error = asyncio.run(scenario())
    assert call_thread != loop_thread
    assert "not a number" in error


def test_loop_writes_run_one_at_a_time(paced: None) -> None:
    log: list[str] = []

    def write(name: str) -> None:
        log.append(f"{name} begins")
        points_for(0.01)
        pacing.blocking(time.sleep, 0.005)
        points_for(0.01)
        log.append(f"{name} ends")

    async def scenario() -> None:
        writer = LoopWriter(ReadsFirst(share=0.25), turn=0.0005)
        await asyncio.gather(writer.run(lambda: write("a")), writer.run(lambda: write("b")))
        await writer.close()

    asyncio.run(scenario())
    assert log == ["a begins", "a ends", "b begins", "b ends"]


def test_a_write_whose_request_went_away_still_finishes(paced: None) -> None:
    log: list[str] = []

    async def scenario() -> None:
        writer = LoopWriter(ReadsFirst(share=0.25), turn=0.0005)
        request = asyncio.ensure_future(writer.run(lambda: points_for(0.05, log)))
        await asyncio.sleep(0.01)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert log == []  # cut off mid-way ...
        await writer.close()  # ... and finished before the writer closes

    asyncio.run(scenario())
    assert log == ["write done"]


def test_a_coroutine_written_on_the_loop_awaits_futures_through_it(paced: None) -> None:
    async def mutation() -> str:
        await asyncio.sleep(0.001)
        later = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.001, later.set_result, "answered")
        points_for(0.005)
        return await later

    async def failing() -> None:
        await asyncio.sleep(0)
        raise KeyError("inside")

    async def scenario() -> str:
        first = ReadsFirst(share=0.25)
        first.reads_done_at = time.perf_counter()  # a read just answered: the write is the loop's
        writer = LoopWriter(first, turn=0.0005)
        answer = await writer.run_coroutine(mutation)
        first.reads_done_at = time.perf_counter()
        with pytest.raises(KeyError, match="inside"):
            await writer.run_coroutine(failing)
        await writer.close()
        return answer

    assert asyncio.run(scenario()) == "answered"


def test_a_write_with_no_read_about_runs_on_a_thread_and_beside_reads_on_the_loop(
    paced: None,
) -> None:
    async def where() -> int:
        return threading.get_ident()

    async def scenario() -> tuple[int, int, int]:
        first = ReadsFirst(share=0.25)
        writer = LoopWriter(first)
        alone = await writer.run_coroutine(where)
        first.reads_done_at = time.perf_counter()
        beside_a_read = await writer.run_coroutine(where)
        await writer.close()
        return threading.get_ident(), alone, beside_a_read

    loop_thread, alone, beside_a_read = asyncio.run(scenario())
    assert alone != loop_thread
    assert beside_a_read == loop_thread
