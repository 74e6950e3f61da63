"""A write in the serving process steps aside for waiting reads, and is never starved."""

from __future__ import annotations

import threading
import time

import pytest

from graph.errors import ConfigError
from service.pacing import ReadsFirst
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
